// The console's one script: live countdowns, the partial amount checked before sending, a
// decision's draft kept across reloads, and a confirmation sent once.
// The server checks everything again; without this script the console works the same.
"use strict";

function remaining(ms) {
  const late = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60);
  const text = d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
  return late ? `${text} late` : `in ${text}`;
}

function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("time[data-countdown]")) {
    const due = Date.parse(el.dataset.countdown);
    if (!Number.isNaN(due)) {
      el.textContent = `${remaining(due - now)} (${el.dataset.countdown.replace("T", " ").replace("Z", " UTC")})`;
      el.classList.toggle("late", due < now);
    }
  }
  // One's own claim that ran out: anyone can take the case now (the server refuses nothing yet,
  // but another moderator may take it first).
  const mine = document.getElementById("my-claim-ends");
  const ended = document.getElementById("claim-ended");
  if (mine && ended) {
    const due = Date.parse(mine.dataset.countdown);
    if (!Number.isNaN(due) && due <= now) {
      ended.textContent = "Your claim ended; anyone can take this case. Take it again before deciding.";
      ended.hidden = false;
    }
  }
}

// A comma only as a thousands separator (1,234.50), as the server reads it: 8,00 is refused.
const THOUSANDS = /^\d{1,3}(,\d{3})+(\.\d*)?$/;

function minorUnits(text, exponent) {
  let t = text.trim();
  if (t.includes(",")) {
    if (!THOUSANDS.test(t)) return "comma";
    t = t.replace(/,/g, "");
  }
  const pattern = exponent > 0 ? new RegExp(`^\\d+(\\.\\d{1,${exponent}})?$`) : /^\d+$/;
  if (!pattern.test(t)) return null;
  const [whole, frac = ""] = t.split(".");
  return Number(whole) * 10 ** exponent + Number(frac.padEnd(exponent, "0") || "0");
}

function checkDecision(form) {
  const amount = form.elements.namedItem("amount");
  const error = document.getElementById("amount-error");
  const outcome = form.elements.namedItem("outcome");
  let message = "";
  if (outcome && outcome.value === "REFUND_PARTIAL") {
    const exponent = Number(form.dataset.exponent);
    const total = Number(form.dataset.total);
    const minor = minorUnits(amount.value, exponent);
    if (minor === "comma") message = "Use a point for decimals: 8.00.";
    else if (minor === null) message = "Type the amount to refund, like 8.00.";
    else if (minor <= 0 || minor >= total) message = `A partial refund is more than 0 and less than the order total (${(total / 10 ** exponent).toFixed(exponent)} ${form.dataset.currency}).`;
  }
  amount.setCustomValidity(message);
  error.textContent = message;
  return message === "";
}

// A decision half typed survives the page reloading (a note or a message added, the case taken):
// kept in this tab's sessionStorage per case, put back only into an empty form (what the server
// filled in wins), and forgotten once the decision is confirmed.
const DRAFT_FIELDS = ["outcome", "amount", "fault", "rationale"];

function draftKey(el) {
  return el && el.dataset.draft ? `decision-draft:${el.dataset.draft}` : null;
}

function keepDraft(form) {
  const key = draftKey(form);
  if (!key) return;
  const draft = {};
  for (const name of DRAFT_FIELDS) draft[name] = form.elements.namedItem(name).value;
  try {
    if (DRAFT_FIELDS.some((name) => draft[name] !== "")) sessionStorage.setItem(key, JSON.stringify(draft));
    else sessionStorage.removeItem(key);
  } catch (e) { /* storage off or full: the draft is only a convenience */ }
}

function restoreDraft(form) {
  const key = draftKey(form);
  if (!key || DRAFT_FIELDS.some((name) => form.elements.namedItem(name).value !== "")) return;
  let draft = null;
  try { draft = JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { draft = null; }
  if (!draft || typeof draft !== "object") return;
  for (const name of DRAFT_FIELDS) {
    const field = form.elements.namedItem(name);
    if (typeof draft[name] !== "string") continue;
    if (field.tagName === "SELECT" && ![...field.options].some((o) => o.value === draft[name])) continue;
    field.value = draft[name];
  }
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 1000);
  const form = document.getElementById("decision");
  if (form) {
    form.addEventListener("submit", (event) => {
      if (!checkDecision(form)) {
        event.preventDefault();
        form.elements.namedItem("amount").focus();
      }
    });
    restoreDraft(form);
    form.addEventListener("input", () => { checkDecision(form); keepDraft(form); });
    form.addEventListener("change", () => keepDraft(form));
  }
  // The confirmation is sent once: a second click waits for the first (the server stays the guard).
  const confirm = document.getElementById("confirm-form");
  if (confirm) {
    confirm.addEventListener("submit", (event) => {
      const button = confirm.querySelector("button[type=submit]");
      if (button.disabled) { event.preventDefault(); return; }
      button.disabled = true;  // the button has no name: the form sends the same fields
      try { const key = draftKey(confirm); if (key) sessionStorage.removeItem(key); } catch (e) { /* none kept */ }
    });
  }
});
