// striate explore: the page. All computation happens in Python (the JSON API); this file draws and asks.
"use strict";

const state = {
  model: null,          // GET /api/model
  result: null,         // the last POST /api/predict answer
  sequence: 0,          // number of the latest prediction request; older answers are dropped
  drawing: false,
  dirty: false,         // the canvas changed since the last prediction was sent
  inFlight: false,
  selected: null,       // {layer, channel, y, x}
};

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const pen = canvas.getContext("2d");

// ----- messages ---------------------------------------------------------------------------------
function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message").textContent = "";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the striate explore server is not answering (was it stopped?)");
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch (error) {
    throw new Error(`the server answered ${response.status} without JSON`);
  }
  if (!response.ok) {
    throw new Error(answer && answer.error ? answer.error : `the server answered ${response.status}`);
  }
  return answer;
}

// ----- the canvas -------------------------------------------------------------------------------
function clearCanvas() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  pen.strokeStyle = "#fff";
  pen.lineWidth = canvas.width / 14;
  pen.lineCap = "round";
  pen.lineJoin = "round";
}

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
          (event.clientY - rect.top) * canvas.height / rect.height];
}

canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  state.drawing = true;
  const [x, y] = canvasPoint(event);
  pen.beginPath();
  pen.moveTo(x, y);
  pen.lineTo(x + 0.01, y);
  pen.stroke();
  state.dirty = true;
});

canvas.addEventListener("pointermove", (event) => {
  if (!state.drawing) return;
  const [x, y] = canvasPoint(event);
  pen.lineTo(x, y);
  pen.stroke();
  state.dirty = true;
  if (!state.inFlight) predictCanvas();      // live while drawing, one request at a time
});

function endStroke() {
  if (!state.drawing) return;
  state.drawing = false;
  predictCanvas();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

$("clear").addEventListener("click", () => {
  clearCanvas();
  clearMessage();
  state.result = null;
  state.selected = null;
  render();
});

$("classify").addEventListener("click", () => predictCanvas(true));

// ----- images from files ------------------------------------------------------------------------
function readFile(file) {
  clearMessage();
  const limit = state.model ? state.model.limits.image_bytes : Infinity;
  if (file.size > limit) {
    showMessage(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MiB; the limit is ` +
                `${(limit / 2 ** 20).toFixed(1)} MiB`);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => predict(reader.result, "file");
  reader.onerror = () => showMessage(`cannot read ${file.name}`);
  reader.readAsDataURL(file);
}

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) readFile(file);
  event.target.value = "";
});

document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer.files[0];
  if (file) readFile(file);
});

// ----- predictions ------------------------------------------------------------------------------
function predictCanvas(force) {
  if (!state.dirty && !force) return;
  state.dirty = false;
  predict(canvas.toDataURL("image/png"), "canvas");
}

async function predict(dataUrl, source) {
  const number = ++state.sequence;
  state.inFlight = true;
  try {
    const result = await api("/api/predict", {image: dataUrl, source: source});
    if (number !== state.sequence) return;   // a newer drawing is on its way
    clearMessage();
    state.result = result;
    render();
    if (state.selected) explainUnit(state.selected);
  } catch (error) {
    if (number === state.sequence) showMessage(error.message);
  } finally {
    if (number === state.sequence) state.inFlight = false;
    if (state.dirty && !state.drawing) predictCanvas();
  }
}

function format(value, digits = 4) {
  if (value === null || value === undefined || Number.isNaN(value)) return "pad";
  const text = Number(value).toFixed(digits);
  return text.startsWith("-") ? "−" + text.slice(1) : text;
}

function render() {
  const result = state.result;
  $("input-image").hidden = !result;
  $("input-empty").hidden = !!result;
  $("prediction").textContent = result ? `: ${result.classes[result.prediction]}` : "";
  $("timing").textContent = result ? `computed by striate in ${result.elapsed_ms} ms` : "";
  if (result) $("input-image").src = result.input.png;
  renderProbabilities(result);
  renderLayers(result);
  if (!result) {
    $("unit").hidden = true;
    $("unit-hint").hidden = false;
    $("rf-box").hidden = true;
  }
}

function renderProbabilities(result) {
  const list = $("probabilities");
  list.replaceChildren();
  if (!result) return;
  result.probabilities.forEach((p, k) => {
    const item = document.createElement("li");
    if (k === result.prediction) item.className = "top";
    const name = document.createElement("span");
    name.className = "class-name";
    name.textContent = result.classes[k];
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    const percent = document.createElement("span");
    percent.className = "probability";
    percent.textContent = `${(100 * p).toFixed(1)}%`;
    item.append(name, bar, percent);
    list.append(item);
  });
}

function tileSize(height, width) {
  const side = Math.max(height, width);
  const scale = Math.max(2, Math.min(8, Math.floor(84 / side)));
  return [height * scale, width * scale];
}

function renderLayers(result) {
  const container = $("layers");
  container.replaceChildren();
  if (!result) return;
  for (const layer of result.layers) {
    const section = document.createElement("div");
    section.className = "layer";
    section.dataset.layer = layer.name;
    const title = document.createElement("h3");
    const [channels, height, width] = layer.shape;
    const more = layer.channels.length < channels ? ` (first ${layer.channels.length} shown)` : "";
    title.textContent = `${layer.label} · ${layer.kind}${layer.activation ? " + " + layer.activation : ""} · ` +
                        `${channels}×${height}×${width}${more} · scale ${format(layer.min, 2)} … ${format(layer.max, 2)}`;
    const tiles = document.createElement("div");
    tiles.className = "tiles";
    const [h, w] = tileSize(height, width);
    layer.channels.forEach((png, channel) => {
      const tile = document.createElement("div");
      tile.className = "tile";
      const image = document.createElement("img");
      image.className = "fmap";
      image.src = png;
      image.width = w;
      image.height = h;
      image.alt = `${layer.label} channel ${channel}`;
      image.title = `${layer.label}, channel ${channel}: click a unit`;
      image.dataset.layer = layer.name;
      image.dataset.channel = channel;
      image.addEventListener("click", (event) => {
        const x = Math.min(width - 1, Math.floor(event.offsetX / image.clientWidth * width));
        const y = Math.min(height - 1, Math.floor(event.offsetY / image.clientHeight * height));
        state.selected = {layer: layer.name, channel: channel, y: y, x: x};
        explainUnit(state.selected);
      });
      const caption = document.createElement("span");
      caption.className = "channel";
      caption.textContent = channel;
      tile.append(image, caption);
      if (state.selected && state.selected.layer === layer.name && state.selected.channel === channel) {
        tile.append(marker(state.selected, height, width, h, w));
      }
      tiles.append(tile);
    });
    section.append(title, tiles);
    container.append(section);
  }
}

function marker(unit, height, width, h, w) {
  const box = document.createElement("div");
  box.className = "unit-marker";
  box.style.left = `${unit.x * w / width}px`;
  box.style.top = `${unit.y * h / height}px`;
  box.style.width = `${w / width}px`;
  box.style.height = `${h / height}px`;
  return box;
}

// ----- one unit ---------------------------------------------------------------------------------
async function explainUnit(unit) {
  if (!state.result) return;
  const request = {pixels: state.result.input.pixels, layer: unit.layer, channel: unit.channel, y: unit.y, x: unit.x};
  try {
    const answer = await api("/api/unit", request);
    if (state.selected !== unit) return;
    renderLayers(state.result);
    renderUnit(answer);
  } catch (error) {
    showMessage(error.message);
  }
}

function renderUnit(u) {
  $("unit-hint").hidden = true;
  $("unit").hidden = false;
  const [y, x] = u.position;
  $("unit-title").textContent = `${u.label}, channel ${u.channel}, unit (y = ${y}, x = ${x})`;
  const box = $("rf-box");
  if (u.bounds === null) {
    $("unit-field").textContent = "Receptive field: not known for this layer (an operation before it moves " +
                                  "positions in a way striate's receptive-field rules do not describe).";
    box.hidden = true;
  } else {
    showField(u, box);
  }

  const formula = $("unit-formula");
  if (u.kind === "conv") {
    const sum = u.weighted_sum - u.bias;
    const inner = `Σ x·w + b = ${format(sum)} + ${paren(u.bias)} = ${format(u.weighted_sum)}`;
    formula.textContent = u.activation
      ? `x = ${u.activation}(Σ x·w + b)\n${inner}\nx = ${u.activation}(${format(u.weighted_sum)}) = ${format(u.value)}`
      : `x = Σ x·w + b\n${inner}`;
  } else {
    const what = {max: "max", min: "min", avg: "mean", adaptive_avg: "mean", adaptive_max: "max"}[u.kind] || u.kind;
    formula.textContent = `x = ${what}(window) = ${format(u.value)}`;
  }
  $("unit-check").textContent = `The model's own feature map holds ${format(u.model_value)} here ` +
                                `(recomputed above in float64 from the layer's input and weights).`;
  renderTables(u);
}

// The unit's receptive field: its bounds in words and a box over the input image.
function showField(u, box) {
  const [[top, bottom], [left, right]] = u.bounds;
  const [[boxTop, boxBottom], [boxLeft, boxRight]] = u.box;
  const reaches = top < 0 || left < 0 || bottom >= u.input_size[0] || right >= u.input_size[1];
  $("unit-field").textContent =
    `Receptive field on the input: rows ${top}…${bottom}, columns ${left}…${right} ` +
    `(${bottom - top + 1}×${right - left + 1} pixels, neighbouring units ${u.field.jump.join("×")} pixels apart)` +
    (reaches ? "; it reaches into the padding beyond the image" : "");
  const image = $("input-image");
  const [height, width] = u.input_size;
  const sx = image.clientWidth / width, sy = image.clientHeight / height;   // displayed pixels per input pixel
  box.style.left = `${image.offsetLeft + boxLeft * sx}px`;
  box.style.top = `${image.offsetTop + boxTop * sy}px`;
  box.style.width = `${(boxRight - boxLeft + 1) * sx}px`;
  box.style.height = `${(boxBottom - boxTop + 1) * sy}px`;
  box.hidden = false;
}

function paren(value) {
  return value < 0 ? `(${format(value)})` : format(value);
}

function renderTables(u) {
  const container = $("unit-tables");
  container.replaceChildren();
  const limit = 16;
  u.window.slice(0, limit).forEach((plane, index) => {
    const channel = u.input_channels[index];
    const group = document.createElement("div");
    group.className = "channel-group";
    const heading = document.createElement("p");
    let partial = "";
    if (u.weights) {
      let total = 0;
      plane.forEach((row, i) => row.forEach((value, j) => { total += (value || 0) * u.weights[index][i][j]; }));
      partial = `: Σ x·w = ${format(total)}`;
    }
    heading.textContent = `input channel ${channel}${partial}`;
    group.append(heading, table(plane, u, "x (layer input)"));
    if (u.weights) group.append(table(u.weights[index], null, "w (weights)"));
    container.append(group);
  });
  if (u.window.length > limit) {
    const more = document.createElement("p");
    more.className = "hint";
    more.textContent = `… and ${u.window.length - limit} more input channels (included in the sum).`;
    container.append(more);
  }
  if (u.weights) {
    const bias = document.createElement("p");
    bias.textContent = `b (bias) = ${format(u.bias)}`;
    container.append(bias);
  }
}

// A table of a window (``unit`` given: cells on padding are marked) or of weights.
function table(rows, unit, caption) {
  const element = document.createElement("table");
  const title = document.createElement("caption");
  title.textContent = caption;
  element.append(title);
  const outside = (i, j) => unit !== null && (
    unit.taps[0][i] < 0 || unit.taps[0][i] >= unit.layer_input_size[0] ||
    unit.taps[1][j] < 0 || unit.taps[1][j] >= unit.layer_input_size[1]);
  rows.forEach((row, i) => {
    const line = document.createElement("tr");
    row.forEach((value, j) => {
      const cell = document.createElement("td");
      if (value === null) {
        cell.textContent = "·";
        cell.className = "pad";
        cell.title = "padding: pooling never picks it";
      } else {
        cell.textContent = format(value, 2);
        cell.title = String(value);
        if (outside(i, j)) {
          cell.className = "pad";
          cell.title = `padding: ${value}`;
        } else if (value < 0) {
          cell.className = "negative";
        }
      }
      line.append(cell);
    });
    element.append(line);
  });
  return element;
}

// ----- start ------------------------------------------------------------------------------------
async function start() {
  clearCanvas();
  try {
    state.model = await api("/api/model");
    const m = state.model;
    $("model-description").textContent =
      `${m.description} · ${m.input.channels}×${m.input.height}×${m.input.width} input · ` +
      `${m.layers.length} convolution/pooling layers · ${m.checkpoint}`;
  } catch (error) {
    showMessage(error.message);
  }
}

start();
