/* Calendar (日历): on a phone the month is a list of days; bring today (or the next day
   with records) into view. The month grid itself is rendered by the server. */
(function () {
  "use strict";
  var calendar = document.querySelector(".sd-calendar");
  if (!calendar || window.matchMedia("(min-width: 768px)").matches) { return; }
  var today = calendar.getAttribute("data-today");
  var days = calendar.querySelectorAll(".sd-agenda-day");
  for (var i = 0; i < days.length; i++) {
    if (days[i].getAttribute("data-date") >= today) {
      if (i > 0) { days[i].scrollIntoView({ block: "start" }); }
      return;
    }
  }
}());
