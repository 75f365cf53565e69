// The buyer home's live list (services/portal/live.py): each lead won arrives as a server-sent
// event and is put at the top of the table, which keeps its ten newest rows. Without JavaScript,
// or without EventSource, the page is as the server rendered it and a reload brings it up to date.
"use strict";
(function () {
  const table = document.getElementById("bought");
  if (!table || !window.EventSource) {
    return;
  }
  const body = table.tBodies[0];
  const source = new EventSource(table.dataset.live + "?since=" + encodeURIComponent(table.dataset.since));
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
