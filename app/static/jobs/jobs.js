/* Live progress on /jobs/list/: poll the runs JSON while any run is queued or running. */
(function () {
  "use strict";
  var table = document.getElementById("sd-jobs");
  if (!table) { return; }
  var url = table.getAttribute("data-url");

  function setBar(bar, value) {
    bar.style.width = value + "%";
    bar.setAttribute("aria-valuenow", value);
    bar.textContent = value + "%";
  }

  function active() {
    return table.querySelector('tr[data-status="queued"], tr[data-status="running"]') !== null;
  }

  Array.prototype.forEach.call(table.querySelectorAll(".sd-bar"), function (bar) {
    setBar(bar, parseInt(bar.getAttribute("data-progress"), 10) || 0);
  });

  function poll() {
    if (!active()) { return; }
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var reload = false;
        data.runs.forEach(function (run) {
          var row = table.querySelector('tr[data-run-id="' + run.id + '"]');
          if (!row) { return; }
          var was = row.getAttribute("data-status");
          row.setAttribute("data-status", run.status);
          row.querySelector(".sd-status").textContent = run.status_label;
          setBar(row.querySelector(".sd-bar"), run.progress);
          row.querySelector(".sd-processed").textContent =
            run.processed + (run.total ? " / " + run.total : "");
          if (was !== run.status && (run.status === "done" || run.status === "failed")) {
            reload = true;
          }
        });
        if (reload) { window.location.reload(); } else { window.setTimeout(poll, 1500); }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
