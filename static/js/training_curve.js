// The learning curve of a dataset's retrain cycles: held-out accuracy against expert labels (baselines dashed), the
// training loss of every cycle (the selected one bold), and the selected cycle's confusion matrix and mistakes.
(function () {
  "use strict";
  var source = document.getElementById("training-curve-data");
  if (!source || !window.echarts) {
    return;
  }
  var points = JSON.parse(source.textContent).points;
  var select = document.getElementById("cycle-select");
  var charts = [];

  function fmt(v) {
    return v == null ? "–" : Number(v).toFixed(3);
  }

  function chart(elementId) {
    var element = document.getElementById(elementId);
    if (!element) {
      return null;
    }
    var made = window.echarts.init(element, null, { renderer: "canvas" });
    charts.push(made);
    return made;
  }

  function line(name, field, colour, dashed) {
    return {
      name: name, type: "line", symbolSize: dashed ? 4 : 7, connectNulls: true,
      lineStyle: { type: dashed ? "dashed" : "solid", width: dashed ? 1.5 : 2.5 },
      itemStyle: { color: colour },
      data: points.filter(function (p) { return p.expert_labels != null && p[field] != null; })
        .map(function (p) { return { value: [p.expert_labels, p[field]], name: p.name }; })
    };
  }

  function drawAccuracy() {
    var target = chart("curve-accuracy");
    if (!target) {
      return;
    }
    var series = [
      line("accuracy", "accuracy", "#3b6fd8", false),
      line("balanced accuracy", "balanced_accuracy", "#2b8a3e", false),
      line("previous version", "previous_accuracy", "#868e96", true),
      line("pixels PCA(20) + LR", "pixel_accuracy", "#e8590c", true),
      line("previous version (balanced)", "previous_balanced_accuracy", "#adb5bd", true),
      line("pixels (balanced)", "pixel_balanced_accuracy", "#f59f00", true)
    ];
    target.setOption({
      title: { text: "held-out accuracy", left: "center", textStyle: { fontSize: 14 } },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          return p.data.name + "<br>" + p.seriesName + ": " + fmt(p.value[1]) + " with " + p.value[0] + " labels";
        }
      },
      legend: { bottom: 0, selected: { "previous version (balanced)": false, "pixels (balanced)": false } },
      grid: { left: 50, right: 20, top: 40, bottom: 95 },
      xAxis: { type: "value", name: "expert labels", nameLocation: "middle", nameGap: 26, min: "dataMin",
               minInterval: 1 },
      yAxis: { type: "value", min: function (v) { return Math.max(0, Math.floor(v.min * 10) / 10); }, max: 1 },
      series: series
    });
  }

  function selectedIndex() {
    var id = select ? Number(select.value) : points[points.length - 1].version;
    var found = points.findIndex(function (p) { return p.version === id; });
    return found < 0 ? points.length - 1 : found;
  }

  var lossChart = chart("curve-loss");
  var confusionChart = chart("confusion");

  function drawLoss(selected) {
    if (!lossChart) {
      return;
    }
    lossChart.setOption({
      title: { text: "training loss per epoch", left: "center", textStyle: { fontSize: 14 } },
      tooltip: { trigger: "axis", valueFormatter: fmt },
      legend: { bottom: 0, type: "scroll" },
      grid: { left: 50, right: 20, top: 40, bottom: 70 },
      xAxis: { type: "value", name: "epoch", nameLocation: "middle", nameGap: 28, min: 1, minInterval: 1 },
      yAxis: { type: "value", name: "loss" },
      series: points.map(function (p, i) {
        return {
          name: "cycle " + p.cycle, type: "line", symbolSize: 4, z: i === selected ? 3 : 2,
          lineStyle: { width: i === selected ? 3 : 1.2, opacity: i === selected ? 1 : 0.5 },
          data: p.loss.map(function (loss, epoch) { return [epoch + 1, loss]; })
        };
      })
    }, { notMerge: true });
  }

  function drawConfusion(selected) {
    if (!confusionChart) {
      return;
    }
    var p = points[selected];
    var names = p.class_names.length ? p.class_names : p.classes;
    var cells = [];
    var most = 1;
    p.confusion.forEach(function (row, t) {
      row.forEach(function (count, predicted) {
        cells.push([predicted, t, count]);
        most = Math.max(most, count);
      });
    });
    confusionChart.setOption({
      title: { text: "confusion, cycle " + p.cycle + " (rows: true class)", left: "center",
               textStyle: { fontSize: 14 } },
      tooltip: {
        formatter: function (c) {
          return "true " + names[c.value[1]] + ", predicted " + names[c.value[0]] + ": " + c.value[2];
        }
      },
      grid: { left: 120, right: 20, top: 40, bottom: 70 },
      xAxis: { type: "category", data: names, name: "predicted", nameLocation: "middle", nameGap: 60,
               axisLabel: { rotate: 30, interval: 0 } },
      yAxis: { type: "category", data: names, inverse: true, axisLabel: { interval: 0 } },
      // Every cell shows its count, so the colour scale needs no legend of its own.
      visualMap: { show: false, min: 0, max: most, inRange: { color: ["#f8f9fa", "#3b6fd8"] } },
      series: [{ type: "heatmap", data: cells, label: { show: true } }]
    }, { notMerge: true });
  }

  function showMistakes(selected) {
    var id = String(points[selected].version);
    document.querySelectorAll(".cycle-mistakes").forEach(function (block) {
      block.hidden = block.dataset.version !== id;
    });
  }

  function drawSelected() {
    var selected = selectedIndex();
    drawLoss(selected);
    drawConfusion(selected);
    showMistakes(selected);
  }

  drawAccuracy();
  drawSelected();
  if (select) {
    select.addEventListener("change", drawSelected);
  }
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c.resize(); });
  });
}());
