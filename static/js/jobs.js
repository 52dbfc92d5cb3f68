// Live progress on the Jobs page: while a listed job is queued or running, ask the server every 1.5 s how far the
// jobs got and update their rows. When one finishes, reload once so the feature sets and actions are current.
(function () {
  "use strict";
  var table = document.getElementById("jobs");
  if (!table || !table.dataset.active) {
    return;
  }
  var rows = {};
  table.querySelectorAll("tr[data-job]").forEach(function (row) { rows[row.dataset.job] = row; });
  var ids = Object.keys(rows).filter(function (id) {
    return ["queued", "running"].indexOf(rows[id].dataset.status) >= 0;
  });

  function update(job) {
    var row = rows[job.id];
    var status = row.querySelector(".job-status");
    status.textContent = job.status_display;
    status.className = "job-status status-" + job.status;
    var bar = row.querySelector(".job-progress");
    bar.setAttribute("aria-valuenow", Math.round(job.progress));
    bar.querySelector("span").style.width = job.progress + "%";
    row.querySelector(".job-message").textContent = job.message;
    row.dataset.status = job.status;
  }

  function poll() {
    fetch(table.dataset.statusUrl + "?ids=" + ids.join(","), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (answer) {
        var finished = false;
        answer.jobs.forEach(function (job) {
          update(job);
          finished = finished || job.finished;
        });
        if (finished) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1500);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  if (ids.length) {
    window.setTimeout(poll, 1000);
  }
})();
