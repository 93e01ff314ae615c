// The dashboard works without this script; it only spares a click and asks before
// destructive actions.
"use strict";

document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit")) {
    target.form.requestSubmit();
  }
});

// An import in progress: reload its progress until it is done.
const progress = document.querySelector("[data-refresh-until-done]");
if (progress) {
  setTimeout(() => window.location.reload(), 700);
}
