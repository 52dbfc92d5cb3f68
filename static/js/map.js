// The 2-D map: every galaxy of a feature set as a point (ECharts scatter, drawn on a canvas in "large" mode so
// 100k points stay smooth), coloured by a clustering or a label set. Hovering shows the galaxy's thumbnail and
// class; clicking opens its page. The points come from the page's points.json as parallel lists.
(function () {
  "use strict";
  var element = document.getElementById("map");
  if (!element || !window.echarts) {
    return;
  }
  var select = document.getElementById("map-colour");
  var status = document.getElementById("map-status");
  var count = document.getElementById("map-count");
  var urlFor = function (template, id) { return template.replace("/0/", "/" + id + "/"); };
  // Colours that stay apart for up to 20 classes; galaxies without a class are grey.
  var PALETTE = ["#3b6fd8", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0b7285", "#f08c00", "#5c940d",
                 "#862e9c", "#1864ab", "#d9480f", "#087f5b", "#a61e4d", "#5f3dc4", "#e67700", "#364fc7",
                 "#66a80f", "#9c36b5", "#0c8599", "#c92a2a"];
  var UNLABELLED = "#adb5bd";
  var chart = window.echarts.init(element, null, { renderer: "canvas" });
  var data = null;

  function escapeHtml(text) {
    var span = document.createElement("span");
    span.textContent = text;
    return span.innerHTML;
  }

  function seriesFor(colouring) {
    var groups = {};
    var classes = colouring ? colouring.classes : [];
    for (var i = 0; i < data.ids.length; i++) {
      var value = colouring ? colouring.values[i] : -1;
      (groups[value] = groups[value] || []).push([data.x[i], data.y[i], i]);
    }
    var series = [];
    classes.forEach(function (name, n) {
      if (groups[n]) {
        series.push({ name: name, points: groups[n], colour: PALETTE[n % PALETTE.length] });
      }
    });
    if (groups[-1]) {
      series.push({ name: colouring ? "no " + (colouring.key.indexOf("clustering") === 0 ? "cluster" : "label") :
        "galaxies", points: groups[-1], colour: colouring ? UNLABELLED : PALETTE[0] });
    }
    return series.map(function (s) {
      return { type: "scatter", name: s.name, data: s.points, symbolSize: 5, large: true, largeThreshold: 2000,
               itemStyle: { color: s.colour, opacity: 0.75 }, emphasis: { scale: 2 } };
    });
  }

  function draw() {
    var colouring = null;
    data.colourings.forEach(function (c) { if (c.key === select.value) { colouring = c; } });
    chart.setOption({
      animation: false,
      grid: { left: 40, right: 20, top: 60, bottom: 40 },
      legend: { type: "scroll", top: 0 },
      xAxis: { type: "value", scale: true, splitLine: { show: false } },
      yAxis: { type: "value", scale: true, splitLine: { show: false } },
      dataZoom: [{ type: "inside", xAxisIndex: 0, filterMode: "none" },
                 { type: "inside", yAxisIndex: 0, filterMode: "none" }],
      tooltip: {
        trigger: "item",
        formatter: function (params) {
          var i = params.data[2];
          var id = data.ids[i];
          return '<div class="map-tip"><img src="' + urlFor(element.dataset.thumbnailUrl, id) +
            '" width="96" height="96" alt=""><div><strong>' + escapeHtml(data.external_ids[i]) + "</strong><br>" +
            escapeHtml(params.seriesName) + "</div></div>";
        }
      },
      series: seriesFor(colouring)
    }, { notMerge: true });
  }

  chart.on("click", function (params) {
    if (params.data) {
      window.location.href = urlFor(element.dataset.galaxyUrl, data.ids[params.data[2]]);
    }
  });
  window.addEventListener("resize", function () { chart.resize(); });
  select.addEventListener("change", draw);

  status.textContent = "Loading the points…";
  fetch(element.dataset.pointsUrl, { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) { throw new Error("the server answered " + response.status); }
      return response.json();
    })
    .then(function (points) {
      data = points;
      select.innerHTML = "";
      var none = document.createElement("option");
      none.value = "";
      none.textContent = "nothing (one colour)";
      select.appendChild(none);
      data.colourings.forEach(function (c) {
        var option = document.createElement("option");
        option.value = c.key;
        option.textContent = c.name;
        select.appendChild(option);
      });
      if (data.colourings.length) { select.value = data.colourings[0].key; }
      select.disabled = false;
      count.textContent = data.ids.length.toLocaleString() + " galaxies";
      status.textContent = "";
      draw();
      window.galaxyMap = { chart: chart, data: data };  // for the browser tests
      element.dataset.ready = "true";
    })
    .catch(function (error) {
      status.textContent = "Could not load the map: " + error.message;
    });
})();
