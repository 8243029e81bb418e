export default function () {
  this.route("fiber-link");
}
