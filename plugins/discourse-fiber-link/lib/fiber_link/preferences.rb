# frozen_string_literal: true

module FiberLink
  # The two per-user preferences (user custom fields, registered as booleans in plugin.rb and
  # edited by the user in their preferences). Both are on by default: a user who never saved the
  # preference has no row, and that means yes. Pure Ruby.
  module Preferences
    # "Allow others to tip my posts".
    ALLOW_TIPS = "fiber_link_allow_tips"
    # "Notify me when I receive a tip".
    TIP_NOTIFICATIONS = "fiber_link_tip_notifications"
    ALL = [ALLOW_TIPS, TIP_NOTIFICATIONS].freeze

    # What Discourse reads as true in a custom field (HasCustomFields::Helpers::CUSTOM_FIELD_TRUE).
    TRUE_VALUES = %w[1 t true T True TRUE].freeze

    # Whether a preference is on, given the custom field as stored (a raw string from the
    # user_custom_fields table) or as cast (true/false when the field is registered as boolean).
    # Never set (nil) is on; an explicit true is on; anything else, including a value this code
    # does not understand, is off.
    def self.on?(value)
      return true if value.nil? || value == true
      return false if value == false

      value.is_a?(String) && TRUE_VALUES.include?(value)
    end
  end
end
