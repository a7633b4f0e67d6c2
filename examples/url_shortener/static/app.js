// Copy buttons: <button data-copy="text">.  Falls back to selecting the text.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const text = button.dataset.copy;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied!";
  } catch (err) {
    const field = document.getElementById(button.dataset.field || "");
    if (field) { field.select(); }
    button.textContent = "Press Ctrl+C";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
});
