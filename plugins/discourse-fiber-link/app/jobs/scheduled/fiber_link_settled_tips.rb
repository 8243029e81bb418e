# frozen_string_literal: true

module Jobs
  # Every minute: read the service's settled-tips feed (tip.settled_feed) from the cursor kept in
  # PluginStore; for each newly settled tip, drop its post's cached totals (so the post shows the
  # new total) and notify its author (when notifications are on).
  class FiberLinkSettledTips < ::Jobs::Scheduled
    every 1.minute

    def execute(_args)
      return unless SiteSetting.fiber_link_enabled
      return unless ::FiberLink.configured?

      notify = SiteSetting.fiber_link_notifications_enabled
      notifier = ::FiberLink::TipNotifier.new
      totals = ::FiberLink.post_totals
      DistributedMutex.synchronize("fiber_link_settled_tips", validity: 5.minutes) do
        ::FiberLink::SettledFeedSync.new(
          client: ::FiberLink.client,
          store: ::FiberLink::PluginStoreFeedStore.new,
          notifier: lambda do |tip|
            totals.invalidate([tip["post_id"].to_s])
            notifier.call(tip) if notify
          end,
        ).run
      end
    rescue ::FiberLink::Client::Error => e
      Rails.logger.warn("[fiber-link] settled tips feed: #{e.reason} (#{e.code})")
    end
  end
end
