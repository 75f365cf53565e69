// The homes, live (services/portal/live.py): the element with data-live names the page's event
// stream. A "fragment" event replaces a part of the page (an element marked data-fragment) with the
// same part rendered again by the server; on the buyer home, a "bought" event puts a lead won at the
// top of its table, which keeps its ten newest rows. Without JavaScript, or without EventSource, the
// page is as the server rendered it and a reload brings it up to date.
"use strict";
(function () {
  const anchor = document.querySelector("[data-live]");
  if (!anchor || !window.EventSource) {
    return;
  }
  const since = anchor.dataset.since;
  const source = new EventSource(anchor.dataset.live + (since === undefined ? "" : "?since=" + encodeURIComponent(since)));
  source.addEventListener("fragment", function (event) {
    const part = JSON.parse(event.data);
    const element = document.getElementById(part.id);
    if (element && element.hasAttribute("data-fragment")) {
      element.innerHTML = part.html; // the portal's own template, escaped as the page was
    }
  });
  const table = document.getElementById("bought");
  if (!table) {
    return;
  }
  const body = table.tBodies[0];
  source.addEventListener("bought", function (event) {
    const lead = JSON.parse(event.data);
    if (body.querySelector('tr[data-lead="' + CSS.escape(lead.lead_id) + '"]')) {
      return; // already shown: the page's own rows, or an event sent again after a reconnect
    }
    const row = document.createElement("tr");
    row.dataset.lead = lead.lead_id;
    row.className = "arrived";
    const link = document.createElement("a");
    link.href = "/leads/" + encodeURIComponent(lead.lead_id);
    link.textContent = lead.lead_id;
    const id = row.insertCell();
    id.className = "id";
    id.appendChild(link);
    for (const text of [lead.bought, lead.vertical, lead.state, lead.price, "no"]) {
      row.insertCell().textContent = text;
    }
    body.insertBefore(row, body.rows[0] || null);
    while (body.rows.length > 10) {
      body.deleteRow(-1);
    }
    table.hidden = false;
    const empty = document.getElementById("no-leads");
    if (empty) {
      empty.hidden = true;
    }
  });
})();
