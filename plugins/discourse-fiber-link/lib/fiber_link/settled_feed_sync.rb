# frozen_string_literal: true

module FiberLink
  # Reads the service's tip.settled_feed from a persisted cursor and hands each settled tip to a
  # notifier exactly once. Pure Ruby: the store and the notifier are injected (Discourse keeps the
  # cursor in PluginStore and creates Notification rows; the tests use memory).
  #
  # Exactly once: the feed gives each tip once after a cursor, so the only way to see a tip twice
  # is a crash after notifying but before the cursor moved. For that window the store keeps the
  # ids already notified from the page being processed; a notification and its id are recorded
  # in one store transaction, and the ids are dropped when the cursor moves past the page.
  class SettledFeedSync
    # store must respond to:
    #   cursor -> String or nil
    #   page_done?(tip_id) -> bool      (notified while processing the current page)
    #   transaction { ... }             (atomic with the notifier's writes where possible)
    #   mark_done(tip_id)
    #   advance(next_cursor)            (sets the cursor and forgets the page's ids)
    # notifier: ->(tip) { ... } creates the notification (may skip tips it cannot place)
    def initialize(client:, store:, notifier:, page_size: 100, max_pages: 20)
      @client = client
      @store = store
      @notifier = notifier
      @page_size = page_size
      @max_pages = max_pages
    end

    # Returns the number of notifications created.
    def run
      created = 0
      @max_pages.times do
        params = { "limit" => @page_size }
        cursor = @store.cursor
        params["after"] = cursor if cursor
        page = @client.call("tip.settled_feed", params)
        tips = page["tips"] || []
        tips.each do |tip|
          next if tip["state"] && tip["state"] != "SETTLED"
          next if @store.page_done?(tip["tip_id"])

          @store.transaction do
            @notifier.call(tip)
            @store.mark_done(tip["tip_id"])
          end
          created += 1
        end
        @store.advance(page["next_cursor"]) if page["next_cursor"]
        break if tips.size < @page_size
      end
      created
    end

    # The store used by tests and by anything that keeps state in memory.
    class MemoryStore
      attr_reader :cursor

      def initialize
        @cursor = nil
        @done = {}
      end

      def page_done?(tip_id) = @done.key?(tip_id)

      def transaction
        yield
      end

      def mark_done(tip_id)
        @done[tip_id] = true
      end

      def advance(next_cursor)
        @cursor = next_cursor
        @done = {}
      end
    end
  end
end
