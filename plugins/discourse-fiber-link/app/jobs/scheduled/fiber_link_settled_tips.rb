# frozen_string_literal: true

module Jobs
  # Every minute: notify authors of their newly settled tips, from the service's settled-tips
  # feed (tip.settled_feed), with the cursor kept in PluginStore.
  class FiberLinkSettledTips < ::Jobs::Scheduled
    every 1.minute

    def execute(_args)
      return unless SiteSetting.fiber_link_enabled && SiteSetting.fiber_link_notifications_enabled
      return unless ::FiberLink.configured?

      DistributedMutex.synchronize("fiber_link_settled_tips", validity: 5.minutes) do
        ::FiberLink::SettledFeedSync.new(
          client: ::FiberLink.client,
          store: ::FiberLink::PluginStoreFeedStore.new,
          notifier: ::FiberLink::TipNotifier.new,
        ).run
      end
    rescue ::FiberLink::Client::Error => e
      Rails.logger.warn("[fiber-link] settled tips feed: #{e.reason} (#{e.code})")
    end
  end
end
