// The Events page: live tail, raw JSON panel and volume chart, on top of the server-rendered page.
// No inline scripts: everything the page tells this file is in data- attributes of #events-app.
(() => {
  "use strict";
  const app = document.getElementById("events-app");
  if (!app) return;

  const POLL_MS = 1000;
  const COUNTS_REFRESH_MS = 10000; // counters and chart: also picks up the catalog's sync when no event arrives
  const COUNTS_AFTER_EVENTS_MS = 2000; // counters follow new events, at most this often
  const MAX_ROWS = 200;
  const PALETTE = ["#0172ad", "#2a9d8f", "#e9a23b", "#e76f51", "#8e6cc8", "#d64f8a", "#9aa5b1"];

  const rows = document.getElementById("tail-rows");
  const liveStatus = app.querySelector("[data-live-status]");
  const liveLabel = app.querySelector("[data-live-label]");
  const announcer = app.querySelector("[data-tail-announcer]");
  const older = app.querySelector("[data-older]");
  const olderLink = app.querySelector("[data-older-link]");
  const live = app.dataset.live === "on";
  let lastId = Number(app.dataset.lastId || 0);

  const detailUrl = (id) => app.dataset.detailUrl.replace(/0\.json$/, `${id}.json`);
  const json = { headers: { Accept: "application/json" }, credentials: "same-origin" };

  // Every date on the page is shown in UTC, as the filters take them, by this one function: "Dec 2 00:30:08",
  // with the year when it is not this year ("Dec 2, 2025 00:30:08"). The server renders ISO without JavaScript.
  const thisYear = new Date().getUTCFullYear();
  function shownDay(iso) {
    const date = new Date(iso);
    const day = { month: "short", day: "numeric", timeZone: "UTC" };
    if (date.getUTCFullYear() !== thisYear) day.year = "numeric";
    return date.toLocaleDateString(undefined, day);
  }

  function shownTime(iso) {
    return `${shownDay(iso)} ${new Date(iso).toLocaleTimeString(undefined, { hour12: false, timeZone: "UTC" })}`;
  }

  function timeElement(iso) {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.dataset.time = "";
    time.title = iso;
    time.textContent = shownTime(iso);
    return time;
  }

  function formatTimes(root) {
    root.querySelectorAll("time[data-time]").forEach((time) => {
      time.title = time.dateTime;
      time.textContent = shownTime(time.dateTime);
    });
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function tailRow(event, fresh) {
    const tr = document.createElement("tr");
    tr.dataset.eventId = event.id;
    if (fresh) tr.className = "fresh";
    const timeCell = cell("", "time");
    const received = document.createElement("small");
    received.className = "received";
    received.append("received ", timeElement(event.received_at));
    timeCell.append(timeElement(event.timestamp), " ", received);
    const link = document.createElement("a");
    link.href = detailUrl(event.id);
    link.className = "event-link";
    link.textContent = event.event;
    const badge = document.createElement("span");
    badge.className = "type-badge";
    badge.textContent = event.type;
    const user = document.createElement("small");
    user.className = "user";
    user.textContent = event.user_id || event.anonymous_id || "no user id";
    const nameCell = cell("", "name");
    nameCell.append(link, " ", badge, " ", user);
    const preview = cell(event.preview, "preview");
    preview.title = event.preview;
    tr.append(timeCell, nameCell, preview);
    return tr;
  }

  function setLive(ok) {
    liveStatus.classList.toggle("offline", !ok);
    liveLabel.textContent = ok ? "Live" : "Reconnecting…";
  }

  function announce(events) {
    const names = [...new Set(events.map((event) => event.event))].slice(0, 3).join(", ");
    announcer.textContent = `${events.length} new event${events.length === 1 ? "" : "s"}: ${names}`;
  }

  // "Older events" pages back from the last row shown (keyset paging on the event id).
  function setOlder(olderId) {
    older.hidden = !olderId;
    if (olderId) olderLink.href = `?${pageQuery({ before_id: olderId })}`;
  }

  function pageQuery(extra) {
    const query = new URLSearchParams(new URL(app.dataset.tailUrl, window.location.href).search);
    for (const [name, value] of Object.entries(extra)) query.set(name, String(value));
    return query.toString();
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const url = new URL(app.dataset.tailUrl, window.location.href);
        url.searchParams.set("after_id", String(lastId));
        const response = await fetch(url, json);
        if (!response.ok) throw new Error(`tail answered ${response.status}`);
        const { events } = await response.json();
        if (events.length) {
          rows.querySelector("tr.empty")?.remove();
          const fresh = document.createDocumentFragment();
          for (const event of events) fresh.append(tailRow(event, true)); // newest first, as the endpoint sends them
          rows.prepend(fresh);
          lastId = Math.max(lastId, ...events.map((event) => event.id));
          if (rows.rows.length > MAX_ROWS) {
            while (rows.rows.length > MAX_ROWS) rows.deleteRow(-1);
            setOlder(rows.rows[rows.rows.length - 1].dataset.eventId);
          }
          announce(events);
          countsSoon();
        }
        setLive(true);
      } catch {
        setLive(false);
      }
    }
    window.setTimeout(poll, POLL_MS);
  }

  olderLink.addEventListener("click", async (click) => {
    click.preventDefault();
    const before = new URL(olderLink.href, window.location.href).searchParams.get("before_id");
    const url = new URL(app.dataset.tailUrl, window.location.href);
    url.searchParams.set("before_id", before);
    olderLink.setAttribute("aria-busy", "true");
    const response = await fetch(url, json);
    olderLink.removeAttribute("aria-busy");
    if (!response.ok) return;
    const page = await response.json();
    const rowsBefore = rows.rows.length;
    for (const event of page.events) rows.append(tailRow(event, false));
    setOlder(page.older);
    rows.rows[rowsBefore]?.querySelector("a")?.focus(); // keyboard users continue where the new rows start
  });

  // Counters: the filters' counts, refreshed as the tail brings events and while the catalog's sync runs.
  const counters = app.querySelectorAll("[data-count]");
  const catalogUpdated = app.querySelector("time[data-since]");
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  let countsTimer = null;

  function showSince() {
    if (!catalogUpdated) return;
    // Never in the future: a reader's clock running behind the server's reads as "now".
    const seconds = Math.min(0, Math.round((new Date(catalogUpdated.dateTime) - Date.now()) / 1000));
    catalogUpdated.textContent = seconds > -60
      ? relative.format(seconds, "second")
      : relative.format(Math.round(seconds / 60), "minute");
  }

  async function refreshCounts() {
    countsTimer = null;
    try {
      const response = await fetch(app.dataset.countsUrl, json);
      if (!response.ok) return;
      const counts = await response.json();
      const number = (value) => value.toLocaleString();
      for (const counter of counters) {
        const kind = counter.dataset.count;
        let text = number(counts[kind]);
        if (kind === "events" && counts.capped) text += "+";
        if (kind === "names" && counts.other_names) text += " + Other";
        counter.textContent = text;
      }
      if (catalogUpdated && counts.catalog_synced_at) catalogUpdated.dateTime = counts.catalog_synced_at;
      showSince();
      drawVolume();
    } catch {
      // The tail's badge already says when the server cannot be reached.
    }
  }

  function countsSoon() {
    if (countsTimer === null) countsTimer = window.setTimeout(refreshCounts, COUNTS_AFTER_EVENTS_MS);
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
    const response = await fetch(detailUrl(row.dataset.eventId), json);
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
    return period === "24h"
      ? new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: "UTC" })
      : shownDay(iso);
  }

  async function drawVolume() {
    if (typeof window.Chart === "undefined") return;
    const url = new URL(app.dataset.volumeUrl, window.location.href);
    url.searchParams.set("period", period);
    const response = await fetch(url, json);
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

  formatTimes(app);
  showSince();
  drawVolume();
  if (live) {
    window.setInterval(refreshCounts, COUNTS_REFRESH_MS);
    window.setTimeout(poll, POLL_MS);
  }
})();
