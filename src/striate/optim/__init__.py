"""Optimizers and learning-rate schedules over Parameters (PyTorch's names and update rules).

    opt = st.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = st.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1000)
"""
from striate.optim import lr_scheduler
from striate.optim.adam import Adam, AdamW
from striate.optim.optimizer import Optimizer
from striate.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
