"""Pure array kernels: no autograd, no Tensors — only arrays in, arrays out."""
