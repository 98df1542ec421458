// The catalog's sort applies as soon as it is chosen. Without this script the "Show" button
// does the same, so the page works either way.
document.addEventListener("DOMContentLoaded", function () {
  var sort = document.querySelector("form.filters select[name=sort]");
  if (sort) {
    sort.addEventListener("change", function () {
      sort.form.submit();
    });
  }
});
