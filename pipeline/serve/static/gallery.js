// The gallery: every chosen or dropped frame gets a card; each file is sent alone to
// POST /v1/segment?images=true (at most PARALLEL at once), so one bad file only marks its own card.
// All text from files and the server goes in through textContent, never as HTML.
"use strict";

const PARALLEL = 2;
const gallery = document.getElementById("gallery");
const statusLine = document.getElementById("status");
const tokenRow = document.getElementById("token-row");
const tokenInput = document.getElementById("token");
const downloadAll = document.getElementById("download-all");
let pending = [];
let running = 0;
let done = 0;
let total = 0;
let generation = 0; // "Clear" starts a new one: cards still in flight from before are no longer counted

tokenInput.value = sessionStorage.getItem("trus-token") || "";
tokenInput.addEventListener("change", () => { sessionStorage.setItem("trus-token", tokenInput.value); loadModel(); });

function authHeaders() {
  return tokenInput.value ? { Authorization: "Bearer " + tokenInput.value } : {};
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function loadModel() {
  const line = document.getElementById("model");
  try {
    const response = await fetch("/v1/model", { headers: authHeaders() });
    if (response.status === 401) {
      tokenRow.hidden = false;
      line.textContent = "Model: this service needs an access token";
      return;
    }
    const card = await response.json();
    const contract = card.contract;
    line.textContent = `Model: ${card.name} · version ${card.version} · ${card.precision} · classes ` +
      `${contract.classes.join(", ")} · ${contract.note || ""}`;
  } catch (error) {
    line.textContent = "Model: the service cannot be reached (" + error + ")";
  }
}

function stem(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

function areaTable(frame) {
  const table = element("table");
  const head = table.createTHead().insertRow();
  for (const title of ["class", "area px", "area mm²"]) head.appendChild(element("th", title));
  const body = table.createTBody();
  for (const item of frame.classes) {
    const row = body.insertRow();
    row.appendChild(element("td", item.name));
    row.appendChild(element("td", item.area_px.toLocaleString("en"), "number"));
    row.appendChild(element("td", item.area_mm2 === null ? "–" : item.area_mm2.toFixed(1), "number"));
  }
  return table;
}

function showFrame(card, file, frame, count) {
  const box = element("div", null, "frame");
  const image = element("img");
  image.src = frame.overlay_png;
  image.alt = `${file.name}: mask over frame ${frame.frame}`;
  box.appendChild(image);
  box.appendChild(areaTable(frame));
  const spacing = frame.spacing.x_mm === null ? "spacing unknown (areas in px only)" : "spacing " + frame.spacing.described;
  box.appendChild(element("p", `${count > 1 ? "frame " + frame.frame + " · " : ""}${frame.width}×${frame.height} px · ${spacing}`, "meta"));
  if (frame.plane) box.appendChild(element("p", `plane: ${frame.plane} (${(100 * frame.plane_probability).toFixed(0)}%)`, "meta"));
  if (frame.review.flag) box.appendChild(element("p", "review: " + frame.review.reason, "meta review"));
  const link = element("a", "Download mask", "download");
  link.href = frame.mask_png;
  link.download = `${stem(file.name)}${count > 1 ? "_f" + String(frame.frame).padStart(3, "0") : ""}_mask.png`;
  box.appendChild(link);
  card.appendChild(box);
}

function showError(card, message) {
  card.classList.add("error");
  card.querySelector(".state").remove();
  card.appendChild(element("p", message, "error-message"));
}

async function segment(file, card) {
  const form = new FormData();
  form.append("files", file, file.name);
  try {
    const response = await fetch("/v1/segment?images=true", { method: "POST", body: form, headers: authHeaders() });
    let payload = null;
    try { payload = await response.json(); } catch (error) { payload = null; }
    if (!response.ok) {
      if (response.status === 401) tokenRow.hidden = false;
      const detail = payload && payload.detail ? (typeof payload.detail === "string" ? payload.detail : JSON.stringify(payload.detail)) : response.statusText;
      showError(card, `${response.status}: ${detail}`);
      return;
    }
    card.querySelector(".state").remove();
    const result = payload.files[0];
    for (const frame of result.frames) showFrame(card, file, frame, result.frames.length);
    card.classList.add("done");
    downloadAll.disabled = false;
  } catch (error) {
    showError(card, "the service cannot be reached: " + error);
  }
}

function pump() {
  while (running < PARALLEL && pending.length) {
    const [file, card] = pending.shift();
    const started = generation;
    running += 1;
    segment(file, card).finally(() => {
      running -= 1;
      if (started === generation) {
        done += 1;
        statusLine.textContent = `${done} of ${total} file(s) done`;
      }
      pump();
    });
  }
}

function addFiles(files) {
  for (const file of files) {
    const card = element("article", null, "card");
    card.appendChild(element("h2", file.name));
    card.appendChild(element("p", "segmenting…", "state muted"));
    gallery.appendChild(card);
    pending.push([file, card]);
    total += 1;
  }
  statusLine.textContent = `${done} of ${total} file(s) done`;
  pump();
}

const drop = document.getElementById("drop");
const picker = document.getElementById("picker");
picker.addEventListener("change", () => { addFiles(Array.from(picker.files)); picker.value = ""; });
drop.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") picker.click(); });
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.remove("over"); });
}
drop.addEventListener("drop", (event) => addFiles(Array.from(event.dataTransfer.files)));
downloadAll.addEventListener("click", () => {
  gallery.querySelectorAll("a.download").forEach((link, index) => setTimeout(() => link.click(), 150 * index));
});
document.getElementById("clear").addEventListener("click", () => {
  generation += 1;
  pending = [];
  gallery.replaceChildren();
  done = 0;
  total = 0;
  statusLine.textContent = "";
  downloadAll.disabled = true;
});
loadModel();
