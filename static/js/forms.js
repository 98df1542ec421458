// A form that comes back with errors: put the keyboard on the first field to fix, so nobody
// has to hunt for it (the page works the same without this script; the errors are linked to
// their fields with aria-describedby either way).
document.addEventListener("DOMContentLoaded", function () {
  var invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) {
    invalid.focus();
  }
});
