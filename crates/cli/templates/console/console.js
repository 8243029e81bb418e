// The console works without this file; with it, dangerous buttons ask first.
document.addEventListener('submit', (e) => {
  const b = e.submitter;
  const msg = b && b.dataset.confirm;
  if (msg && !window.confirm(msg)) e.preventDefault();
});
