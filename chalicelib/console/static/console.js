// The console's one script: live countdowns and the partial amount checked before sending.
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
}

function minorUnits(text, exponent) {
  const t = text.trim().replace(/,/g, "");
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
    if (minor === null) message = "Type the amount to refund, like 8.00.";
    else if (minor <= 0 || minor >= total) message = `A partial refund is more than 0 and less than the order total (${(total / 10 ** exponent).toFixed(exponent)} ${form.dataset.currency}).`;
  }
  amount.setCustomValidity(message);
  error.textContent = message;
  return message === "";
}

document.addEventListener("DOMContentLoaded", () => {
  tick();
  setInterval(tick, 30000);
  const form = document.getElementById("decision");
  if (form) {
    form.addEventListener("submit", (event) => {
      if (!checkDecision(form)) {
        event.preventDefault();
        form.elements.namedItem("amount").focus();
      }
    });
    form.addEventListener("input", () => checkDecision(form));
  }
});
