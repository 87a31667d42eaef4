/* SchemaDesk charts: draws every .sd-chart from the JSON at its data-url with
 * Apache ECharts (served from /static/vendor/echarts). Pie, bar and line; each
 * chart has a tooltip, a legend, resizes with its panel and downloads as PNG. */
(function () {
  "use strict";

  var charts = [];

  function optionFor(data) {
    var base = {
      tooltip: { trigger: data.type === "pie" ? "item" : "axis", confine: true },
      legend: { top: 0, type: "scroll" },
      animation: false
    };
    if (data.type === "pie") {
      base.series = [{
        name: data.measure,
        type: "pie",
        radius: ["35%", "65%"],
        center: ["50%", "55%"],
        data: data.labels.map(function (label, i) { return { name: label, value: data.values[i] }; })
      }];
      base.tooltip.formatter = "{b}: {c} ({d}%)";
      return base;
    }
    base.grid = { left: 8, right: 16, top: 36, bottom: 8, containLabel: true };
    base.xAxis = {
      type: "category",
      data: data.labels,
      axisLabel: { hideOverlap: true, rotate: data.labels.length > 8 && !data.time_series ? 30 : 0 }
    };
    base.yAxis = { type: "value" };
    base.series = [{
      name: data.measure,
      type: data.type === "line" ? "line" : "bar",
      data: data.values,
      connectNulls: false,
      showSymbol: data.values.length <= 60
    }];
    if (data.time_series && data.labels.length > 36) {
      base.dataZoom = [{ type: "inside", start: 100 - Math.round(3600 / data.labels.length), end: 100 }];
    }
    return base;
  }

  function message(el, text) {
    var p = document.createElement("p");
    p.className = "text-muted sd-chart-note";
    p.textContent = text;
    el.parentNode.appendChild(p);
  }

  function emptyOption(text) {
    return {
      title: { text: text, left: "center", top: "middle", textStyle: { color: "#999", fontWeight: "normal" } },
      xAxis: { show: false }, yAxis: { show: false }, series: []
    };
  }

  function draw(el, root) {
    var locale = root.getAttribute("data-locale") === "zh" ? "ZH" : "EN";
    var chart = echarts.init(el, null, { locale: locale, renderer: "canvas" });
    charts.push(chart);
    el.sdChart = chart;
    chart.showLoading();
    fetch(el.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (data) {
        chart.hideLoading();
        el.setAttribute("data-title", data.title);
        if (!data.values.length) {
          chart.setOption(emptyOption(root.getAttribute("data-empty-text")));
        } else {
          chart.setOption(optionFor(data));
        }
        if (data.truncated) { message(el, root.getAttribute("data-truncated-text")); }
        el.setAttribute("data-rendered", "1");
      })
      .catch(function () {
        chart.hideLoading();
        chart.setOption(emptyOption(root.getAttribute("data-error-text")));
        el.setAttribute("data-rendered", "error");
      });
  }

  function downloadPng(button) {
    var panel = button.closest(".sd-chart-panel");
    var el = panel && panel.querySelector(".sd-chart");
    if (!el || !el.sdChart) { return; }
    var link = document.createElement("a");
    link.href = el.sdChart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
    link.download = (el.getAttribute("data-name") || "chart") + ".png";
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
  }

  function start() {
    var roots = document.querySelectorAll(".sd-charts");
    Array.prototype.forEach.call(roots, function (root) {
      Array.prototype.forEach.call(root.querySelectorAll(".sd-chart"), function (el) { draw(el, root); });
      root.addEventListener("click", function (event) {
        var button = event.target.closest(".sd-chart-png");
        if (button) { downloadPng(button); }
      });
    });
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 100);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
