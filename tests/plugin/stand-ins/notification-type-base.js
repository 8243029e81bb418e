// Stand-in for core's NotificationTypeBase (discourse/lib/notification-types/base.js), the class
// a notification renderer extends: the same getters, with formatUsername and postUrl reduced to
// what they do on a forum at the root.
export default class NotificationTypeBase {
  constructor({ notification, currentUser, siteSettings, site }) {
    this.notification = notification;
    this.currentUser = currentUser;
    this.siteSettings = siteSettings;
    this.site = site;
  }

  get classNames() {
    const classes = ["notification", this.notification.read ? "read" : "unread"];
    if (this.notificationName) {
      classes.push(this.notificationName.replace(/_/g, "-"));
    }
    return classes;
  }

  get linkHref() {
    if (this.topicId) {
      const slug = this.notification.slug || "topic";
      const n = this.notification.post_number;
      return `/t/${slug}/${this.topicId}${n > 1 ? `/${n}` : ""}`;
    }
    return undefined;
  }

  get linkTitle() {
    return this.notificationName ? `notifications.titles.${this.notificationName}` : "";
  }

  get icon() {
    return `notification.${this.notificationName}`;
  }

  get label() {
    return this.notification.acting_user_name || this.username;
  }

  get description() {
    return this.notification.fancy_title || this.notification.data.topic_title;
  }

  get labelClasses() {
    return [];
  }

  get descriptionClasses() {
    return [];
  }

  get topicId() {
    return this.notification.topic_id;
  }

  get username() {
    return this.notification.data.display_username;
  }

  get notificationName() {
    return this.site?.notificationLookup?.[this.notification.notification_type];
  }
}
