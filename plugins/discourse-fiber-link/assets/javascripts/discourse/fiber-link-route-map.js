// /fiber-link, the dashboard's first address: it now sends the signed-in user to their own
// /u/:username/tips (routes/fiber-link.js), and asks anyone else to log in.
export default function () {
  this.route("fiber-link");
}
