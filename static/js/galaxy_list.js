// The galaxy grid's filters apply as soon as one changes. A new schema empties the class filters, whose choices
// are that schema's classes. Without JavaScript the Filter button does the same.
(function () {
  "use strict";
  var form = document.getElementById("galaxy-filters");
  if (!form) {
    return;
  }
  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.tagName !== "SELECT") {
      return;
    }
    if (target.name === "schema") {
      ["class", "consensus"].forEach(function (name) {
        var select = form.elements[name];
        if (select) {
          select.value = "";
          select.disabled = true;
        }
      });
    }
    form.submit();
  });
})();
