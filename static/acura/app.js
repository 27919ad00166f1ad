// Acura Portal — small progressive enhancements; every page works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkbox for bulk-action tables.
  document.querySelectorAll("[data-select-all]").forEach((master) => {
    const name = master.getAttribute("data-select-all");
    const boxes = () => document.querySelectorAll(`input[type=checkbox][name="${name}"]`);
    const sync = () => {
      const count = [...boxes()].filter((b) => b.checked).length;
      document.querySelectorAll("[data-selected-count]").forEach((el) => { el.textContent = count; });
      document.querySelectorAll("[data-needs-selection]").forEach((el) => { el.disabled = count === 0; });
    };
    master.addEventListener("change", () => { boxes().forEach((b) => { b.checked = master.checked; }); sync(); });
    boxes().forEach((b) => b.addEventListener("change", sync));
    sync();
  });
  // Copy-to-clipboard buttons: <button data-copy="#id">.
  document.querySelectorAll("[data-copy]").forEach((btn) => {
    btn.addEventListener("click", async () => {
      const target = document.querySelector(btn.getAttribute("data-copy"));
      if (!target) return;
      try { await navigator.clipboard.writeText(target.textContent.trim()); btn.textContent = "Copied"; }
      catch (e) { btn.textContent = "Select and copy"; }
    });
  });
  // Confirm before destructive submits: <form data-confirm="Really?">.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => { if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault(); });
  });
});
