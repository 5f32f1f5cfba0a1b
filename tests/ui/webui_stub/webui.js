// A stand-in for the page-side contract of AUTOMATIC1111 1.10 / Forge that Model Doctor's
// javascript/modeldoc.js relies on (written from the documented behaviour, see
// shared/reference/webui-api.md §5 and §6): gradioApp, onUiLoaded, onAfterUiUpdate, randomId,
// requestProgress (a .progressDiv inserted before the given element, polling ./internal/progress),
// selectCheckpoint (the hidden #change_checkpoint button) and appendContextMenuOption.
// Loaded into <head> before gradio renders, as the WebUI loads extension scripts.
(function() {
    "use strict";

    window.webuiCalls = {progress: [], selectCheckpoint: [], menu: []};

    window.gradioApp = function() {
        var app = document.getElementsByTagName("gradio-app")[0];
        var root = app && app.shadowRoot ? app.shadowRoot : document;
        if (!root.getElementById) {
            root.getElementById = function(id) { return document.getElementById(id); };
        }
        return root;
    };

    var loaded = [];
    var afterUpdate = [];
    var uiLoaded = false;
    window.onUiLoaded = function(cb) { loaded.push(cb); };
    window.onAfterUiUpdate = function(cb) { afterUpdate.push(cb); };
    var timer = null;
    new MutationObserver(function() {
        if (!uiLoaded && document.querySelector("#tabs")) {
            uiLoaded = true;
            loaded.forEach(function(cb) { cb(); });
        }
        clearTimeout(timer);
        timer = setTimeout(function() { afterUpdate.forEach(function(cb) { cb(); }); }, 200);
    }).observe(document, {childList: true, subtree: true});

    window.randomId = function() {
        return "task(" + Math.random().toString(36).slice(2, 12) + ")";
    };

    window.requestProgress = function(idTask, progressbarContainer, gallery, atEnd) {
        var parent = progressbarContainer.parentNode;
        var bar = document.createElement("div");
        bar.className = "progressDiv";
        var inner = document.createElement("div");
        inner.className = "progress";
        bar.appendChild(inner);
        parent.insertBefore(bar, progressbarContainer);
        window.webuiCalls.progress.push(idTask);
        var poll = function() {
            fetch("./internal/progress", {method: "POST", headers: {"Content-Type": "application/json"},
                                          body: JSON.stringify({id_task: idTask})})
                .then(function(r) { return r.json(); })
                .then(function(res) {
                    if (res.completed) {
                        parent.removeChild(bar);
                        atEnd();
                        return;
                    }
                    inner.textContent = res.textinfo || "";
                    setTimeout(poll, 100);
                });
        };
        setTimeout(poll, 100);
    };

    window.desiredCheckpointName = null;
    window.selectCheckpoint = function(name) {
        window.webuiCalls.selectCheckpoint.push(name);
        window.desiredCheckpointName = name;
        gradioApp().getElementById("change_checkpoint").click();
    };

    // The context menu: an entry shows when the innermost element right-clicked matches its selector.
    var options = [];
    window.appendContextMenuOption = function(selector, name, fn) {
        options.push([selector, name, fn]);
        window.webuiCalls.menu.push(selector + " | " + name);
        return "id" + options.length;
    };
    document.addEventListener("contextmenu", function(e) {
        var target = e.composedPath()[0];
        var old = document.getElementById("context-menu");
        if (old) {
            old.remove();
        }
        var hits = options.filter(function(o) { return target.matches && target.matches(o[0]); });
        if (!hits.length) {
            return;
        }
        e.preventDefault();
        var nav = document.createElement("nav");
        nav.id = "context-menu";
        nav.style.cssText = "position:fixed;z-index:1000;background:#fff;border:1px solid #888;" +
            "left:" + e.pageX + "px;top:" + e.pageY + "px";
        var ul = document.createElement("ul");
        nav.appendChild(ul);
        hits.forEach(function(o) {
            var li = document.createElement("li");
            li.textContent = o[1];
            li.addEventListener("click", function() { nav.remove(); o[2](); });
            ul.appendChild(li);
        });
        document.body.appendChild(nav);
    });
})();
