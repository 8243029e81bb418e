// Stand-in for Discourse's dialog service (dialog-holder): dialog({ title, type, bodyComponent,
// bodyComponentModel, didConfirm, didCancel }) shows the body component in a dialog;
// didConfirmWrapped() (what ConfirmSession calls) closes it and runs didConfirm; closing it any
// other way runs didCancel, as core's reset() does when it is not confirming.
import { renderComponent } from "@ember/renderer";
import DialogHolder from "./dialog-holder.gjs";

export function createDialogService(getOwner) {
  let open = null;
  const service = {
    shown: [],
    params: null,
    dialog(params) {
      this.close();
      this.params = params;
      this.shown.push({ title: params.title, type: params.type });
      open = renderComponent(DialogHolder, {
        into: document.getElementById("dialog-root"),
        owner: getOwner(),
        args: { params, dialog: this },
      });
    },
    close() {
      open?.destroy();
      open = null;
      const params = this.params;
      this.params = null;
      return params;
    },
    didConfirmWrapped() {
      const params = this.close();
      params?.didConfirm?.();
    },
    cancel() {
      const params = this.close();
      params?.didCancel?.();
    },
  };
  service.didConfirmWrapped = service.didConfirmWrapped.bind(service);
  service.cancel = service.cancel.bind(service);
  return service;
}
