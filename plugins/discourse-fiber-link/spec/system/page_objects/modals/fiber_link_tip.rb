# frozen_string_literal: true

module PageObjects
  module Modals
    # The tip dialog (components/modal/fiber-link-tip-modal.gjs).
    class FiberLinkTip < PageObjects::Modals::Base
      MODAL_SELECTOR = ".fiber-link-tip-modal"

      def open?
        has_css?(".modal.d-modal#{MODAL_SELECTOR}")
      end

      def closed?
        has_no_css?(".modal.d-modal#{MODAL_SELECTOR}")
      end

      def has_title?(text)
        has_css?("#{MODAL_SELECTOR} .d-modal__title-text", text:)
      end

      def has_assets?(*assets)
        assets.all? { |asset| has_css?("#{MODAL_SELECTOR} #fiber-link-asset option", text: asset) }
      end

      def fill_amount(amount)
        find("#{MODAL_SELECTOR} #fiber-link-amount").fill_in(with: amount)
        self
      end

      def select_asset(asset)
        find("#{MODAL_SELECTOR} #fiber-link-asset").select(asset)
        self
      end

      def fill_message(message)
        find("#{MODAL_SELECTOR} #fiber-link-message").fill_in(with: message)
        self
      end

      def generate_invoice
        find("#{MODAL_SELECTOR} .fiber-link-tip-modal__generate").click
        self
      end

      def has_amount_error?(text)
        has_css?("#{MODAL_SELECTOR} .fiber-link-tip-modal__amount-error", text:)
      end

      def has_invoice?(invoice)
        has_field?("fiber-link-invoice", with: invoice, disabled: :all)
      end

      def has_qr_code?
        has_css?("#{MODAL_SELECTOR} img.fiber-link-tip-modal__qr")
      end

      def has_state?(text)
        has_css?("#{MODAL_SELECTOR} .fiber-link-tip-modal__state", text:)
      end
    end
  end
end
