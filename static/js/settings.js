// The "Token created" page. Progressive enhancement: without JavaScript the token is still shown, and a reload
// posts the form again, which the form's one-time id refuses.
const reveal = document.querySelector("[data-replace-url]");
if (reveal) {
  // The address becomes the token's own page, so a reload GETs it (without the plaintext) instead of posting.
  history.replaceState(null, "", reveal.dataset.replaceUrl);
  // Coming Back to this page from the back-forward cache would show the plaintext again: load that address.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) window.location.reload();
  });
  const field = document.getElementById("new-token");
  field.addEventListener("focus", () => field.select());
  field.focus();
  field.select();
  // app.js copies; this says so to screen readers, which do not read a button's changed label.
  const status = document.getElementById("copy-status");
  reveal.addEventListener("click", (event) => {
    if (event.target.closest("[data-copy-target]")) status.textContent = "Copied to the clipboard.";
  });
}
