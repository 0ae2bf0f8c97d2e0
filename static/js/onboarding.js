// The onboarding component (templates/events/onboarding.html). Without JavaScript every example is shown, each
// with its heading; with it, tabs choose the language, and a new token's first event is watched for.
const POLL_EVERY_MS = 2000;
const POLL_AT_MOST_MS = 30000; // the longest wait between polls after errors
const WATCH_FOR_MS = 10 * 60 * 1000;

function setUpTabs(component) {
  const tablist = component.querySelector("[data-example-tabs]");
  const tabs = [...tablist.querySelectorAll('[role="tab"]')];
  const panels = tabs.map((tab) => document.getElementById(tab.getAttribute("aria-controls")));
  panels.forEach((panel, index) => {
    panel.setAttribute("role", "tabpanel");
    panel.setAttribute("aria-labelledby", tabs[index].id);
    panel.tabIndex = -1;
  });
  const select = (index, focus) => {
    tabs.forEach((tab, i) => {
      tab.setAttribute("aria-selected", String(i === index));
      tab.tabIndex = i === index ? 0 : -1;
      panels[i].hidden = i !== index;
    });
    if (focus) tabs[index].focus();
  };
  tablist.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) select(tabs.indexOf(tab), false);
  });
  tablist.addEventListener("keydown", (event) => {
    const current = tabs.indexOf(document.activeElement);
    const moves = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: tabs.length - 1 };
    if (current < 0 || !(event.key in moves)) return;
    event.preventDefault();
    select((moves[event.key] + tabs.length) % tabs.length, true);
  });
  tablist.hidden = false;
  component.classList.add("has-tabs");
  select(0, false);
}

function watchFirstEvent(watcher) {
  const status = watcher.querySelector("[data-first-event-status]");
  const checkAgain = watcher.querySelector("[data-check-again]");
  let startedAt = 0;
  let delay = POLL_EVERY_MS;

  const showArrival = (answer) => {
    const when = new Date(answer.received_at).toLocaleTimeString();
    const link = document.createElement("a");
    link.href = answer.url;
    link.textContent = "See it on the Events page";
    link.dataset.testid = "first-event-link";
    const name = document.createElement("strong");
    name.textContent = answer.event;
    status.replaceChildren("✓ Your first event arrived: ", name, ` at ${when}. `, link);
    watcher.classList.add("received");
  };

  const poll = async () => {
    let answer = null;
    try {
      const response = await fetch(watcher.dataset.firstEventUrl, { headers: { Accept: "application/json" } });
      if (response.redirected) {
        status.textContent = "Your session has ended: log in again to see your first event.";
        return;
      }
      if (response.ok) answer = await response.json();
    } catch {
      // Offline or the server is restarting: wait longer, and try again.
    }
    if (answer && answer.received) {
      showArrival(answer);
      return;
    }
    delay = answer ? POLL_EVERY_MS : Math.min(delay * 2, POLL_AT_MOST_MS);
    if (Date.now() - startedAt >= WATCH_FOR_MS) {
      status.textContent = "No event yet after 10 minutes. Did the example answer with an error?";
      checkAgain.hidden = false;
      return;
    }
    setTimeout(poll, delay);
  };

  const start = () => {
    startedAt = Date.now();
    delay = POLL_EVERY_MS;
    checkAgain.hidden = true;
    poll();
  };
  checkAgain.addEventListener("click", () => {
    status.textContent = "Waiting for your first event…";
    start();
  });
  start();
}

document.querySelectorAll(".onboarding").forEach((component) => {
  setUpTabs(component);
  const watcher = component.querySelector("[data-first-event-url]");
  if (watcher) watchFirstEvent(watcher);
});
