// Learning curves of an active-learning simulation: mean balanced accuracy and macro-F1 against the number of
// labels, one line per strategy (random dashed) with a band of one standard deviation over the seeds, and random's
// mean at the final budget as a dotted reference line (the target the "labels saved" figure counts to).
(function () {
  "use strict";
  var source = document.getElementById("curves-data");
  if (!source || !window.echarts) {
    return;
  }
  var data = JSON.parse(source.textContent);
  var PALETTE = ["#3b6fd8", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0b7285", "#f08c00", "#5c940d",
                 "#862e9c", "#1864ab"];

  function band(name, points, field, color) {
    // Two stacked series per strategy, named like its line so the legend toggles all three: the lower edge
    // (invisible) and the band's height above it (filled).
    var spread = field + "_sd";
    if (!points.some(function (p) { return p[spread]; })) {
      return [];
    }
    var common = { name: name, type: "line", stack: "band-" + name, symbol: "none", silent: true,
                   lineStyle: { opacity: 0 }, tooltip: { show: false } };
    return [
      Object.assign({}, common, { data: points.map(function (p) { return [p.labels, p[field] - p[spread]]; }) }),
      Object.assign({}, common, { areaStyle: { color: color, opacity: 0.12 },
                                  data: points.map(function (p) { return [p.labels, 2 * p[spread]]; }) })
    ];
  }

  function draw(elementId, field, title) {
    var element = document.getElementById(elementId);
    if (!element) {
      return;
    }
    var series = [];
    Object.keys(data.curves).forEach(function (name, i) {
      var points = data.curves[name].filter(function (p) { return p[field] != null; });
      var isRandom = name === "random";
      var color = isRandom ? "#868e96" : PALETTE[i % PALETTE.length];
      series.push({
        name: name, type: "line", symbolSize: 5, z: 3,
        lineStyle: { type: isRandom ? "dashed" : "solid", width: isRandom ? 2 : 2.5 },
        itemStyle: { color: color },
        data: points.map(function (p) { return [p.labels, p[field]]; }),
        markLine: isRandom && field === "balanced_accuracy" && data.target != null ? {
          silent: true, symbol: "none", lineStyle: { type: "dotted", color: "#868e96" },
          // Inside the plot, above the line: at the end of it the label ran past the chart's right edge.
          label: { formatter: "random's final", position: "insideEndTop" }, data: [{ yAxis: data.target }]
        } : undefined
      });
      series = series.concat(band(name, points, field, color));
    });
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption({
      title: { text: title, left: "center", textStyle: { fontSize: 14 } },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v == null ? "" : v.toFixed(3); } },
      legend: { bottom: 0 },
      grid: { left: 50, right: 20, top: 40, bottom: 60 },
      xAxis: { type: "value", name: "labels", nameLocation: "middle", nameGap: 28, min: "dataMin" },
      // No axis name: the chart's title says what the axis is, and a name at the top overlapped it.
      yAxis: { type: "value", min: function (v) { return Math.max(0, Math.floor(v.min * 10) / 10); }, max: 1 },
      series: series
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  draw("curve-balanced", "balanced_accuracy", "balanced accuracy (mean over seeds)");
  draw("curve-f1", "macro_f1", "macro-F1 (mean over seeds)");
}());
