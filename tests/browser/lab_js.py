"""JavaScript the browser tests evaluate in JupyterLab's page (shared by every browser test)."""

KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""


RUN_CELL = """async (index) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  panel.content.activeCellIndex = index;
  await app.commands.execute('notebook:run-cell');
}"""


# Evaluate an expression in the notebook's kernel behind the UI's back (the notebook does not
# show it): how a test asks the kernel what it did.
KERNEL_EVAL = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = null;
  future.onIOPub = msg => {
    if (msg.header.msg_type === 'execute_result') { out = msg.content.data['text/plain']; }
    if (msg.header.msg_type === 'error') { out = 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue; }
  };
  await future.done;
  return out;
}"""
