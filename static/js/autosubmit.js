// Forms marked data-autosubmit apply as soon as one of their selects changes; without JavaScript their button does.
(function () {
  "use strict";
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.addEventListener("change", function (event) {
      if (event.target.tagName === "SELECT") {
        form.submit();
      }
    });
  });
})();
