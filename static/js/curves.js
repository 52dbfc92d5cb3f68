// Learning curves of an active-learning simulation: accuracy and balanced accuracy against the number of labels,
// one line per strategy (random dashed), with random's final accuracy as a dotted reference line.
(function () {
  "use strict";
  var source = document.getElementById("curves-data");
  if (!source || !window.echarts) {
    return;
  }
  var data = JSON.parse(source.textContent);
  var PALETTE = ["#3b6fd8", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0b7285", "#f08c00", "#5c940d",
                 "#862e9c", "#1864ab"];

  function draw(elementId, field, title) {
    var element = document.getElementById(elementId);
    if (!element) {
      return;
    }
    var names = Object.keys(data.curves);
    var series = names.map(function (name, i) {
      var isRandom = name === "random";
      return {
        name: name, type: "line", symbolSize: 5,
        lineStyle: { type: isRandom ? "dashed" : "solid", width: isRandom ? 2 : 2.5 },
        itemStyle: { color: isRandom ? "#868e96" : PALETTE[i % PALETTE.length] },
        data: data.curves[name].map(function (p) { return [p.labels, p[field]]; }),
        markLine: isRandom && field === "accuracy" && data.baseline != null ? {
          silent: true, symbol: "none", lineStyle: { type: "dotted", color: "#868e96" },
          label: { formatter: "random's final" }, data: [{ yAxis: data.baseline }]
        } : undefined
      };
    });
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption({
      title: { text: title, left: "center", textStyle: { fontSize: 14 } },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v.toFixed(3); } },
      legend: { bottom: 0 },
      grid: { left: 50, right: 20, top: 40, bottom: 60 },
      xAxis: { type: "value", name: "labels", nameLocation: "middle", nameGap: 28, min: "dataMin" },
      yAxis: { type: "value", name: title, min: function (v) { return Math.max(0, Math.floor(v.min * 10) / 10); },
               max: 1 },
      series: series
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  draw("curve-accuracy", "accuracy", "accuracy");
  draw("curve-balanced", "balanced_accuracy", "balanced accuracy");
}());
