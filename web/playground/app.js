// Kinema playground: a page over the public API, nothing else. The server embeds its limits and engines in the
// page (#kinema-config); the key lives in this tab's sessionStorage and travels only in the Authorization header.
"use strict";

const config = JSON.parse(document.getElementById("kinema-config").textContent);
const limits = config.limits;
const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "kinema.apiKey";
const TERMINAL = new Set(["TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"]);

const state = {
  image: null, // {dataURI, width, height, bytes}
  endImage: null,
  shots: [{ prompt: "", duration: 5 }, { prompt: "", duration: 5 }],
  follow: null, // AbortController of the task being followed
  cursor: null,
};

// ---------------------------------------------------------------- errors next to fields

/** The element that shows errors for a contract field path ("multi_prompt[1].duration" → the shot editor). */
function errorSlot(field) {
  if (!field) return $("error-general");
  if (field.startsWith("multi_prompt")) return $("error-multi_prompt");
  return $("error-" + field) || $("error-general");
}

function showError(field, message) {
  const slot = errorSlot(field);
  slot.textContent = message;
  const holder = slot.closest(".field");
  if (holder) holder.classList.add("invalid");
}

function clearErrors() {
  for (const slot of document.querySelectorAll("#submit-form .error")) slot.textContent = "";
  for (const holder of document.querySelectorAll("#submit-form .invalid")) holder.classList.remove("invalid");
}

// ---------------------------------------------------------------- API key

function apiKey() {
  return $("api-key").value.trim();
}

function authHeaders() {
  return { Authorization: "Bearer " + apiKey() };
}

$("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem(KEY_STORAGE, apiKey());
  state.cursor = null;
  loadTasks(false);
});

// ---------------------------------------------------------------- images: checked here with the contract's rules

function isPNG(b) {
  return b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
}

function isJPEG(b) {
  return b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** The image as the request will carry it, or throws the message the server would give (same words). */
async function checkImage(file, field) {
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  if (file.size > limits.maxImageBytes) {
    throw `${field} is ${file.size} bytes; the limit is ${limits.maxImageBytes} bytes (10 MB).`;
  }
  const mime = isPNG(head) ? "image/png" : isJPEG(head) ? "image/jpeg" : null;
  if (!mime) throw `${field} is not a PNG or JPEG image (checked by its first bytes).`;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw `${field} could not be read: the browser cannot decode it.`;
  }
  const w = bitmap.width, h = bitmap.height;
  bitmap.close();
  if (w > limits.maxImageSide || h > limits.maxImageSide || w * h > limits.maxImagePixels) {
    throw `${field} is ${w}x${h} pixels; the limit is ${limits.maxImageSide} pixels per side and ${limits.maxImagePixels} pixels in all.`;
  }
  if (w < limits.minImageSide || h < limits.minImageSide) {
    throw `${field} is ${w}x${h} pixels; width and height must each be at least ${limits.minImageSide} pixels.`;
  }
  const [n, d] = [limits.maxAspectNumerator, limits.maxAspectDenominator];
  if (w * d > h * n || h * d > w * n) {
    throw `${field} is ${w}x${h} pixels; its aspect ratio (width/height) must be between 1:2.5 and 2.5:1.`;
  }
  // The browser names the type by the file's extension; the prefix follows the bytes instead.
  const dataURL = await readAsDataURL(file);
  return { dataURI: `data:${mime};base64,` + dataURL.slice(dataURL.indexOf(",") + 1), width: w, height: h, bytes: file.size };
}

function setupImage(inputID, dropID, previewID, infoID, field, slot) {
  const input = $(inputID), drop = $(dropID), preview = $(previewID), info = $(infoID);
  async function take(file) {
    const errorSlotElement = errorSlot(field);
    errorSlotElement.textContent = "";
    drop.classList.remove("invalid");
    state[slot] = null;
    preview.hidden = true;
    info.textContent = "";
    if (!file) return;
    try {
      const image = await checkImage(file, field);
      state[slot] = image;
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
      info.textContent = `${image.width}x${image.height}, ${(image.bytes / 1024 / 1024).toFixed(2)} MB`;
    } catch (message) {
      showError(field, String(message));
    }
    if (slot === "endImage") $("end-image-clear").hidden = state.endImage === null;
    updateShotRules();
  }
  input.addEventListener("change", () => take(input.files[0]));
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length > 0) take(e.dataTransfer.files[0]);
  });
  return take;
}

setupImage("image", "drop-image", "image-preview", "image-info", "image", "image");
const takeEndImage = setupImage("end-image", "drop-end-image", "end-image-preview", "end-image-info", "end_image", "endImage");
$("end-image-clear").addEventListener("click", () => {
  $("end-image").value = "";
  takeEndImage(null);
});

// ---------------------------------------------------------------- shots

function shotTotal() {
  return state.shots.reduce((sum, shot) => sum + (Number(shot.duration) || 0), 0);
}

function renderShots() {
  const list = $("shots");
  list.replaceChildren();
  state.shots.forEach((shot, index) => {
    const item = document.createElement("li");
    const row = document.createElement("div");
    row.className = "shot";
    const prompt = document.createElement("textarea");
    prompt.rows = 2;
    prompt.placeholder = `shot ${index + 1}`;
    prompt.value = shot.prompt;
    prompt.className = "shot-prompt";
    prompt.addEventListener("input", () => (shot.prompt = prompt.value));
    const duration = document.createElement("input");
    duration.type = "number";
    duration.min = String(limits.minDuration);
    duration.max = String(limits.maxDuration);
    duration.value = String(shot.duration);
    duration.className = "shot-duration";
    duration.title = "seconds";
    duration.addEventListener("input", () => {
      shot.duration = duration.value === "" ? "" : Number(duration.value);
      updateShotRules();
    });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "remove";
    remove.className = "link";
    remove.disabled = state.shots.length <= 1;
    remove.addEventListener("click", () => {
      state.shots.splice(index, 1);
      renderShots();
    });
    row.append(prompt, duration, remove);
    item.append(row);
    list.append(item);
  });
  $("add-shot").disabled = state.shots.length >= limits.maxShots;
  updateShotRules();
}

/** Shots and the last frame exclude each other; the shots' durations are summed against the longest video. */
function updateShotRules() {
  const multi = $("multi-shot").checked;
  $("shot-editor").hidden = !multi;
  $("single-prompt").hidden = multi;
  $("duration-field").hidden = multi;
  $("end-image").disabled = multi;
  const total = shotTotal();
  $("shot-total").textContent = `${total} s of at most ${limits.maxDuration} s`;
  $("shot-total").className = total > limits.maxDuration ? "error" : "info";
  $("multi-shot").disabled = state.endImage !== null;
  $("multi-shot").title = state.endImage !== null ? "remove the last frame to use several shots" : "";
}

$("multi-shot").addEventListener("change", renderShots);
$("add-shot").addEventListener("click", () => {
  state.shots.push({ prompt: "", duration: Math.max(limits.minDuration, Math.min(5, limits.maxDuration - shotTotal())) });
  renderShots();
});

$("cfg-scale").addEventListener("input", () => ($("cfg-scale-value").value = Number($("cfg-scale").value).toFixed(2)));

// ---------------------------------------------------------------- engines

if (config.engines.length > 1) {
  for (const name of config.engines) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name === config.engines[0] ? `${name} (default)` : name;
    $("engine").append(option);
  }
  $("engine-field").hidden = false;
}

// ---------------------------------------------------------------- submit

/** The request body, or null after showing what is missing (the server checks everything again). */
function buildRequest() {
  let ok = true;
  if (!apiKey()) {
    showError("authorization", "Enter an API key (`make serve` prints a dev key).");
    ok = false;
  }
  if (!state.image) {
    if (!errorSlot("image").textContent) showError("image", "Choose a first frame.");
    ok = false;
  }
  if (!ok) return null;
  const body = { image: state.image.dataURI };
  if ($("multi-shot").checked) {
    if (shotTotal() > limits.maxDuration) {
      showError("multi_prompt", `The shots add up to ${shotTotal()} s; the video may last at most ${limits.maxDuration} s.`);
      return null;
    }
    body.multi_prompt = state.shots.map((shot) => ({ prompt: shot.prompt, duration: shot.duration === "" ? undefined : shot.duration }));
  } else {
    body.prompt = $("prompt").value;
    if ($("duration").value !== "") body.duration = Number($("duration").value);
    if (state.endImage) body.end_image = state.endImage.dataURI;
  }
  if ($("negative-prompt").value !== "") body.negative_prompt = $("negative-prompt").value;
  body.cfg_scale = Number($("cfg-scale").value);
  body.sound = $("sound").checked;
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  if (config.engines.length > 1) body.extra = { engine: $("engine").value };
  return body;
}

/** The error body's reason, message and field (contract shape), or a stand-in for a non-contract answer. */
async function readError(response) {
  try {
    const body = await response.json();
    return { reason: body.reason || "", message: body.message || `HTTP ${response.status}`, field: body.metadata && body.metadata.field };
  } catch {
    return { reason: "", message: `HTTP ${response.status}`, field: null };
  }
}

function fieldForError(error, status) {
  if (error.field) return error.field;
  if (status === 401 || status === 403) return "authorization";
  return null;
}

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = buildRequest();
  if (!body) return;
  $("submit").disabled = true;
  try {
    const response = await fetch("/v3/async/kling-v3.0-std-i2v", {
      method: "POST",
      headers: { ...authHeaders(), "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const error = await readError(response);
      showError(fieldForError(error, response.status), error.message);
      return;
    }
    const { task_id: taskID } = await response.json();
    loadTasks(false);
    followTask(taskID);
  } catch (error) {
    showError(null, `The server could not be reached: ${error}`);
  } finally {
    $("submit").disabled = false;
  }
});

// ---------------------------------------------------------------- progress: the event stream, polling when there is none

function showTask(body) {
  const task = body.task;
  const done = task.status === "TASK_STATUS_SUCCEED";
  const failed = task.status === "TASK_STATUS_FAILED";
  const percent = done ? 100 : task.progress_percent;
  $("progress").setAttribute("aria-valuenow", String(percent));
  $("progress").className = "progress" + (done ? " done" : failed ? " failed" : "");
  $("progress-bar").style.width = percent + "%";
  const eta = !TERMINAL.has(task.status) && task.eta > 0 ? `, about ${task.eta} s left` : "";
  $("progress-text").textContent = `${task.status.replace("TASK_STATUS_", "").toLowerCase()} ${percent} %${eta}`;
  $("task-error").textContent = failed ? `${task.reason || "failed"}` : "";
  const video = body.videos && body.videos[0];
  if (done && video) {
    if ($("video").src !== video.video_url) $("video").src = video.video_url;
    $("video").hidden = false;
    $("download").href = video.video_url;
    $("download").hidden = false;
  }
}

function isTerminal(body) {
  return TERMINAL.has(body.task.status);
}

async function followTask(taskID) {
  if (state.follow) state.follow.abort();
  const control = new AbortController();
  state.follow = control;
  $("task-line").textContent = "Task " + taskID;
  $("video").hidden = true;
  $("video").removeAttribute("src");
  $("download").hidden = true;
  $("task-error").textContent = "";
  showTask({ task: { status: "TASK_STATUS_QUEUED", progress_percent: 0, eta: 0, reason: "" }, videos: [] });
  let last = null;
  try {
    last = await streamTask(taskID, control.signal);
  } catch {
    last = null; // no stream here (an older server or a proxy that buffers): poll
  }
  if (control.signal.aborted) return;
  if (!last || !isTerminal(last)) last = await pollTask(taskID, control.signal);
  if (last && !control.signal.aborted) loadTasks(false);
}

/** Reads `text/event-stream` through fetch (EventSource cannot send the Authorization header). */
async function streamTask(taskID, signal) {
  const response = await fetch("/v3/async/task-events?task_id=" + encodeURIComponent(taskID), { headers: authHeaders(), signal });
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n");
      if (!data) continue; // a keep-alive comment
      last = JSON.parse(data);
      showTask(last);
      if (isTerminal(last)) {
        reader.cancel().catch(() => {});
        return last;
      }
    }
  }
}

async function pollTask(taskID, signal) {
  let delay = 500;
  while (!signal.aborted) {
    try {
      const response = await fetch("/v3/async/task-result?task_id=" + encodeURIComponent(taskID), { headers: authHeaders(), signal });
      if (response.ok) {
        const body = await response.json();
        showTask(body);
        if (isTerminal(body)) return body;
      } else {
        $("task-error").textContent = (await readError(response)).message;
        if (response.status !== 429 && response.status < 500) return null;
      }
    } catch {
      if (signal.aborted) return null;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 1.5, 3000);
  }
  return null;
}

// ---------------------------------------------------------------- this key's recent tasks

async function loadTasks(more) {
  if (!apiKey()) return;
  const query = new URLSearchParams({ limit: "10" });
  if (more && state.cursor) query.set("cursor", state.cursor);
  try {
    const response = await fetch("/v3/async/tasks?" + query, { headers: authHeaders() });
    if (!response.ok) {
      $("tasks-empty").textContent = (await readError(response)).message;
      $("tasks-empty").hidden = false;
      return;
    }
    const page = await response.json();
    if (!more) $("task-rows").replaceChildren();
    for (const body of page.tasks) $("task-rows").append(taskRow(body));
    state.cursor = page.next_cursor || null;
    $("more-tasks").hidden = !state.cursor;
    $("tasks-empty").hidden = $("task-rows").children.length > 0;
    $("tasks-empty").textContent = "No tasks yet for this key.";
  } catch (error) {
    $("tasks-empty").textContent = `The server could not be reached: ${error}`;
  }
}

function taskRow(body) {
  const row = document.createElement("tr");
  row.dataset.taskId = body.task.task_id;
  const submitted = Number(body.extra.debug_info.submit_time_ms);
  const cells = [
    submitted > 0 ? new Date(submitted).toLocaleString() : "",
    body.task.task_id.slice(0, 8) + "…",
    body.task.status.replace("TASK_STATUS_", "").toLowerCase() + (body.task.status === "TASK_STATUS_PROCESSING" ? ` ${body.task.progress_percent} %` : ""),
  ];
  cells.forEach((text, index) => {
    const cell = document.createElement("td");
    if (index === 1) {
      const code = document.createElement("code");
      code.textContent = text;
      code.title = body.task.task_id;
      cell.append(code);
    } else {
      cell.textContent = text;
    }
    if (index === 2) cell.className = "status-" + body.task.status;
    row.append(cell);
  });
  const action = document.createElement("td");
  const open = document.createElement("button");
  open.type = "button";
  open.className = "link";
  open.textContent = "show";
  open.addEventListener("click", () => followTask(body.task.task_id));
  action.append(open);
  row.append(action);
  return row;
}

$("refresh-tasks").addEventListener("click", () => loadTasks(false));
$("more-tasks").addEventListener("click", () => loadTasks(true));

renderShots();
loadTasks(false);
