// Progressive enhancement only: every page works without JavaScript.
// A [data-copy-target] button copies its target: a field's value, or any other element's text (a code example).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const target = document.getElementById(button.dataset.copyTarget);
  const isField = target.matches("input, textarea");
  if (isField) target.select();
  try {
    await navigator.clipboard.writeText(isField ? target.value : target.textContent);
  } catch {
    // No Clipboard API (an insecure origin, an old browser): copy the selection instead.
    if (!isField) window.getSelection().selectAllChildren(target);
    document.execCommand("copy");
  }
  button.textContent = "Copied";
});
