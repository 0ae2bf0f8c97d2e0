// The Events page: live tail, raw JSON panel and volume chart, on top of the server-rendered page.
// No inline scripts: everything the page tells this file is in data- attributes of #events-app.
(() => {
  "use strict";
  const app = document.getElementById("events-app");
  if (!app) return;

  const POLL_MS = 1000;
  const CHART_REFRESH_MS = 30000;
  const MAX_ROWS = 200;
  const PALETTE = ["#0172ad", "#2a9d8f", "#e9a23b", "#e76f51", "#8e6cc8", "#d64f8a", "#9aa5b1"];

  const rows = document.getElementById("tail-rows");
  const liveStatus = app.querySelector("[data-live-status]");
  const liveLabel = app.querySelector("[data-live-label]");
  let lastId = Number(app.dataset.lastId || 0);

  const detailUrl = (id) => app.dataset.detailUrl.replace(/0\.json$/, `${id}.json`);
  // "Nov 26 13:04:37", in UTC, as the server renders the first rows.
  function shownTime(iso) {
    const date = new Date(iso);
    const day = date.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
    const time = date.toLocaleTimeString("en-GB", { hour12: false, timeZone: "UTC" });
    return `${day} ${time}`;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function tailRow(event) {
    const tr = document.createElement("tr");
    tr.dataset.eventId = event.id;
    tr.className = "fresh";
    const time = document.createElement("time");
    time.dateTime = event.timestamp;
    time.title = event.timestamp;
    time.textContent = shownTime(event.timestamp);
    const timeCell = cell("", "time");
    timeCell.append(time);
    const link = document.createElement("a");
    link.href = detailUrl(event.id);
    link.className = "event-link";
    link.textContent = event.event;
    const badge = document.createElement("span");
    badge.className = "type-badge";
    badge.textContent = event.type;
    const nameCell = cell("", "name");
    nameCell.append(link, " ", badge);
    const preview = cell(event.preview, "preview");
    preview.title = event.preview;
    tr.append(timeCell, nameCell, cell(event.user_id || event.anonymous_id || "—", "user"), preview);
    return tr;
  }

  function setLive(ok) {
    liveStatus.classList.toggle("offline", !ok);
    liveLabel.textContent = ok ? "Live" : "Reconnecting…";
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const url = new URL(app.dataset.tailUrl, window.location.href);
        url.searchParams.set("after_id", String(lastId));
        const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error(`tail answered ${response.status}`);
        const { events } = await response.json();
        if (events.length) {
          rows.querySelector("tr.empty")?.remove();
          const fresh = document.createDocumentFragment();
          for (const event of events) fresh.append(tailRow(event)); // newest first, as the endpoint sends them
          rows.prepend(fresh);
          lastId = Math.max(lastId, ...events.map((event) => event.id));
          while (rows.rows.length > MAX_ROWS) rows.deleteRow(-1);
        }
        setLive(true);
      } catch {
        setLive(false);
      }
    }
    window.setTimeout(poll, POLL_MS);
  }

  // Raw JSON: clicking a row (or its link, which opens the JSON on its own without JavaScript).
  const detail = app.querySelector("[data-detail-json]");
  const detailHint = app.querySelector("[data-detail-hint]");
  const copyJson = app.querySelector("[data-copy-json]");

  rows.addEventListener("click", async (click) => {
    const row = click.target.closest("tr[data-event-id]");
    if (!row) return;
    click.preventDefault();
    rows.querySelector("tr.selected")?.classList.remove("selected");
    row.classList.add("selected");
    const response = await fetch(detailUrl(row.dataset.eventId), { headers: { Accept: "application/json" } });
    detail.textContent = JSON.stringify(await response.json(), null, 2);
    detail.parentElement.hidden = false;
    detailHint.hidden = true;
    copyJson.hidden = false;
  });

  copyJson.addEventListener("click", async () => {
    await navigator.clipboard.writeText(detail.textContent);
    copyJson.textContent = "Copied";
    window.setTimeout(() => { copyJson.textContent = "Copy"; }, 1500);
  });

  // Volume chart (Chart.js, vendored in static/vendor).
  const canvas = document.getElementById("volume-chart");
  const chartEmpty = app.querySelector("[data-chart-empty]");
  const periodButtons = app.querySelectorAll("[data-period]");
  let period = "24h";
  let chart = null;

  function bucketLabel(iso) {
    const date = new Date(iso);
    return period === "24h"
      ? date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: "UTC" })
      : date.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
  }

  async function drawVolume() {
    if (typeof window.Chart === "undefined") return;
    const url = new URL(app.dataset.volumeUrl, window.location.href);
    url.searchParams.set("period", period);
    if (app.dataset.volumeEvent) url.searchParams.set("event", app.dataset.volumeEvent);
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const volume = await response.json();
    const data = {
      labels: volume.starts.map(bucketLabel),
      datasets: volume.series.map((series, index) => ({
        label: series.event,
        data: series.counts,
        backgroundColor: PALETTE[index % PALETTE.length],
        borderRadius: 3,
        maxBarThickness: 28,
      })),
    };
    chartEmpty.hidden = volume.total > 0;
    if (chart) {
      chart.data = data;
      chart.update();
      return;
    }
    // Text and grid in Pico's colours, so the chart reads in the light and the dark theme alike.
    const theme = getComputedStyle(document.documentElement);
    const textColor = theme.getPropertyValue("--pico-muted-color").trim();
    const gridColor = theme.getPropertyValue("--pico-muted-border-color").trim();
    chart = new window.Chart(canvas, {
      type: "bar",
      data,
      options: {
        color: textColor,
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { color: textColor, maxRotation: 0, autoSkipPadding: 12 } },
          y: { stacked: true, beginAtZero: true, ticks: { color: textColor, precision: 0 }, grid: { color: gridColor } },
        },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10, boxHeight: 10, usePointStyle: true } } },
      },
    });
  }

  periodButtons.forEach((button) => {
    button.addEventListener("click", () => {
      period = button.dataset.period;
      periodButtons.forEach((other) => {
        const pressed = other === button;
        other.setAttribute("aria-pressed", String(pressed));
        other.classList.toggle("outline", !pressed);
      });
      drawVolume();
    });
  });

  drawVolume();
  window.setInterval(drawVolume, CHART_REFRESH_MS);
  window.setTimeout(poll, POLL_MS);
})();
