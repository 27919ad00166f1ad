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
  // Live progress of a machine's replication job. The panel names its JSON endpoint in
  // data-job-poll and is polled every 2 s while data-job-active is "1", every 10 s otherwise
  // (a job the schedule or the agent starts shows up without a reload); elements inside
  // with data-job="<field>" take the job's figures, [data-machine-status] badges and
  // [data-machine-field] cells anywhere on the page take the machine's.
  const POLL_MS = 2000;
  const IDLE_POLL_MS = 10000;
  document.querySelectorAll("[data-job-poll]").forEach((panel) => {
    const url = panel.getAttribute("data-job-poll");
    let failures = 0;
    const set = (name, value) => {
      panel.querySelectorAll(`[data-job="${name}"]`).forEach((el) => { el.textContent = value; });
    };
    const renderMachine = (m) => {
      document.querySelectorAll("[data-machine-status]").forEach((el) => {
        el.className = `badge status-${m.status}`;
        el.textContent = m.status_display;
        el.title = m.status_message || "";
      });
      const field = (name, value) => document.querySelectorAll(`[data-machine-field="${name}"]`).forEach((el) => { el.textContent = value; });
      field("status_message", m.status_message || "");
      field("last_replicated", m.last_replicated);
      field("rpo_lag", m.rpo_lag);
      document.querySelectorAll('[data-machine-field="rpo_lag"]').forEach((el) => { el.classList.toggle("late", !!m.rpo_late); });
    };
    const renderJob = (job) => {
      const body = panel.querySelector("[data-job-body]");
      const none = panel.querySelector("[data-job-none]");
      if (body) body.hidden = !job;
      if (none) none.hidden = !!job;
      const replicate = panel.querySelector("[data-job-replicate]");
      const cancel = panel.querySelector("[data-job-cancel]");
      if (replicate) replicate.hidden = !!(job && job.active);
      if (cancel) {
        cancel.hidden = !(job && job.cancellable);
        if (job && job.cancellable) {
          cancel.action = cancel.getAttribute("data-cancel-template").replace(/\/0\/cancel\/$/, `/${job.id}/cancel/`);
        }
      }
      if (!job) return;
      set("id", job.id);
      set("state_display", job.state_display);
      panel.querySelectorAll('[data-job="state_display"]').forEach((el) => { el.className = `badge job-${job.state}`; });
      set("trigger_display", job.trigger_display);
      set("started", job.text.started);
      set("duration", job.text.duration);
      set("percent", job.percent);
      set("done", job.text.done);
      set("total", job.text.total);
      set("phase", job.phase || "—");
      set("read", job.text.read);
      set("sent", job.text.sent);
      set("new_chunks", job.new_chunks);
      set("speed", job.text.speed);
      panel.querySelectorAll('[data-job="bar"]').forEach((el) => {
        el.setAttribute("aria-valuenow", job.percent);
        const fill = el.querySelector("span");
        if (fill) fill.style.width = `${job.percent}%`;
      });
      panel.querySelectorAll('[data-job="error_message"]').forEach((el) => {
        el.textContent = job.error_message || "";
        el.hidden = !job.error_message;
      });
    };
    const tick = async () => {
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" });
        const type = response.headers.get("content-type") || "";
        if (!response.ok || !type.includes("json")) throw new Error(`status ${response.status}`);
        const data = await response.json();
        failures = 0;
        renderMachine(data.machine);
        renderJob(data.job);
        const wasActive = panel.getAttribute("data-job-active") === "1";
        const active = !!(data.job && data.job.active);
        panel.setAttribute("data-job-active", active ? "1" : "");
        const ended = panel.querySelector("[data-job-ended]");
        if (wasActive && !active && ended) ended.hidden = false;
      } catch (e) {
        failures += 1; // a logged-out session or a restarting server: retry a while, then stop
      }
      const active = panel.getAttribute("data-job-active") === "1";
      if (failures < 30) setTimeout(tick, active ? POLL_MS : IDLE_POLL_MS);
    };
    setTimeout(tick, panel.getAttribute("data-job-active") === "1" ? POLL_MS : IDLE_POLL_MS);
  });
});
// Register new platform wizard: fieldsets shown only for one choice of a radio group,
// <fieldset data-show-when="name=value">. Without JavaScript every fieldset stays visible.
document.addEventListener("DOMContentLoaded", () => {
  const blocks = [...document.querySelectorAll("[data-show-when]")];
  if (!blocks.length) return;
  const update = () => {
    blocks.forEach((block) => {
      const [name, value] = block.getAttribute("data-show-when").split("=");
      const checked = document.querySelector(`input[type=radio][name="${name}"]:checked`);
      block.hidden = !checked || checked.value !== value;
    });
  };
  document.querySelectorAll("input[type=radio]").forEach((r) => r.addEventListener("change", update));
  update();
});
