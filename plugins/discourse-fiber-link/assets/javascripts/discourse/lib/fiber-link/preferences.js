// The plugin's user preferences, kept in user custom fields (serialized to the user themself and
// staff): "Allow others to tip my posts" and "Notify me when a tip to me settles". Both default
// to on: absent means on, and only an explicit false turns one off. Pure module.

export const ALLOW_TIPS_FIELD = "fiber_link_allow_tips";
export const TIP_NOTIFICATIONS_FIELD = "fiber_link_tip_notifications";
export const PREFERENCE_FIELDS = [ALLOW_TIPS_FIELD, TIP_NOTIFICATIONS_FIELD];

// A custom field's value as Discourse serializes it -> whether the preference is on. The same
// rule as the server's FiberLink::Preferences.on?: never set (null/undefined) is on, a boolean is
// itself, a stored string is on only when Discourse reads it as true ("1", "t", "true"), and
// anything else is off.
const TRUE_STRINGS = ["1", "t", "true", "T", "True", "TRUE"];

export function preferenceEnabled(value) {
  if (value === null || value === undefined || value === true) {
    return true;
  }
  if (value === false) {
    return false;
  }
  return typeof value === "string" && TRUE_STRINGS.includes(value);
}

// Whether `viewer` may see `user`'s tips page (the link in the user's navigation): the user
// themself and staff, as Discourse's own can_edit on the user serializer says. The server checks
// again for every call; this only decides what is shown.
export function canSeeTipsPage(user, viewer) {
  if (!user || !viewer) {
    return false;
  }
  if (viewer.staff || viewer.admin || viewer.moderator) {
    return true;
  }
  if (user.can_edit === true && viewer.id === user.id) {
    return true;
  }
  return (
    typeof user.username === "string" &&
    typeof viewer.username === "string" &&
    user.username.toLowerCase() === viewer.username.toLowerCase()
  );
}

// Whether `viewer` is looking at their own tips page (the service answers only for the signed-in
// user, so another user's page shows nothing of theirs).
export function isOwnPage(user, viewer) {
  if (!viewer) {
    return false;
  }
  if (!user) {
    return true;
  }
  if (user.id !== undefined && viewer.id !== undefined) {
    return String(user.id) === String(viewer.id);
  }
  return (
    String(user.username ?? "").toLowerCase() ===
    String(viewer.username ?? "").toLowerCase()
  );
}
