/*
 * batchhub: the time left before this server's batch job reaches its wall
 * time. Written by hand as a JupyterLab federated extension (no build step):
 * the container below hands JupyterLab one plugin. The end comes from the
 * page option "batchhubJobEnd" (seconds since the epoch), which batchhub's
 * server extension sets from what the job's launcher computed.
 *
 * On load it says when the job ends; 10 minutes before the end it warns, in
 * a notification that stays until dismissed. The command "batchhub:time-left"
 * shows the time left again.
 */
(function () {
  "use strict";
  var NAME = "batchhub-walltime";
  var WARN_SECONDS = 600;

  function pageOption(name) {
    var el = document.getElementById("jupyter-config-data");
    try {
      return (JSON.parse((el && el.textContent) || "{}") || {})[name];
    } catch (e) {
      return undefined;
    }
  }

  function duration(seconds) {
    var minutes = Math.max(0, Math.floor(seconds / 60));
    var hours = Math.floor(minutes / 60);
    if (hours > 0) {
      return hours + " h " + (minutes % 60) + " min";
    }
    return minutes + " min";
  }

  function clock(end) {
    return new Date(end * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function message(end, warning) {
    var left = end - Date.now() / 1000;
    if (left <= 0) {
      return "This server's batch job has reached its wall time (" + clock(end) + "): it is about to end.";
    }
    if (warning) {
      return "This server's batch job ends in " + duration(left) + ", at " + clock(end) +
        ". Save your work now: the scheduler then stops the server.";
    }
    return "This server runs as a batch job that ends at " + clock(end) + " (" + duration(left) + " left).";
  }

  var plugin = {
    id: NAME + ":plugin",
    description: "Shows the time left before the batch job ends, and warns 10 minutes before.",
    autoStart: true,
    activate: function (app) {
      var end = Number(pageOption("batchhubJobEnd") || 0);
      if (!end) {
        return;
      }
      function notify(text, type, autoClose) {
        if (app.commands.hasCommand("apputils:notify")) {
          return app.commands.execute("apputils:notify", {
            message: text,
            type: type,
            options: { autoClose: autoClose }
          });
        }
      }
      var warned = false;
      function check() {
        if (!warned && end - Date.now() / 1000 <= WARN_SECONDS) {
          warned = true;
          notify(message(end, true), "warning", false);
        }
      }
      app.commands.addCommand("batchhub:time-left", {
        label: "Time left on this server's batch job",
        execute: function () {
          return notify(message(end, false), "info", 10000);
        }
      });
      app.restored.then(function () {
        if (end - Date.now() / 1000 > WARN_SECONDS) {
          notify(message(end, false), "info", 10000);
        }
        check();
        window.setInterval(check, 15000);
      });
    }
  };

  var containers = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  containers[NAME] = {
    init: function () {
      return Promise.resolve();
    },
    get: function () {
      return Promise.resolve(function () {
        return { __esModule: true, default: [plugin] };
      });
    }
  };
})();
