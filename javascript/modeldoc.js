// Model Doctor: the right-click "Inspect with Model Doctor" entry on the checkpoint dropdown,
// and the WebUI progress bar for the tab's long jobs. Loaded by the WebUI as a classic script.
(function() {
    "use strict";

    var TAB_TITLE = "Model Doctor";
    // The WebUI translates the page from localizations/*.json (ours join the user's language pack),
    // but not a context-menu entry: look it up in the same dictionary. The tab's title stays
    // "Model Doctor" in every language (a name), so switchToTab finds it.
    var ENTRY_ENGLISH = "Inspect with Model Doctor";
    var ENTRY = (typeof window.localization === "object" && window.localization &&
                 window.localization[ENTRY_ENGLISH]) || ENTRY_ENGLISH;
    // AUTOMATIC1111 (quicksettings setting) and Forge (its own checkpoint dropdown). The
    // context-menu code matches the innermost element clicked, so target the input itself.
    var SELECTORS = ["#setting_sd_model_checkpoint input", "#quicksettings .model_selection input"];

    function root() {
        return typeof gradioApp === "function" ? gradioApp() : document;
    }

    function byId(id) {
        var app = root();
        return (app.getElementById ? app.getElementById(id) : null) || document.getElementById(id);
    }

    // Tab buttons carry no stable id in gradio 3.41, and their order differs between forks and
    // user settings: find the button by its text.
    function switchToTab(title) {
        var buttons = root().querySelectorAll("#tabs > .tab-nav > button, #tabs > div > .tab-nav > button, #tabs button[role='tab']");
        for (var i = 0; i < buttons.length; i++) {
            if (buttons[i].textContent.trim() === title) {
                buttons[i].click();
                return true;
            }
        }
        return false;
    }

    function selectedCheckpoint(selector) {
        var input = root().querySelector(selector);
        var value = input && input.value ? input.value.trim() : "";
        if (!value && typeof opts === "object" && opts && opts.sd_model_checkpoint) {
            value = String(opts.sd_model_checkpoint);
        }
        return value;
    }

    function setText(id, value) {
        var box = byId(id);
        var field = box && (box.matches("textarea, input") ? box : box.querySelector("textarea, input"));
        if (!field) {
            return false;
        }
        field.value = value;
        field.dispatchEvent(new Event("input", {bubbles: true}));
        return true;
    }

    // Switch to the tab and inspect the checkpoint the dropdown shows.
    function inspectCheckpoint(selector) {
        var title = selectedCheckpoint(selector);
        if (!title) {
            return false;
        }
        switchToTab(TAB_TITLE);
        if (!setText("modeldoc_js_value", title)) {
            return false;
        }
        setTimeout(function() {
            var button = byId("modeldoc_js_inspect");
            if (button) {
                (button.matches("button") ? button : button.querySelector("button") || button).click();
            }
        }, 50);
        return true;
    }

    function isCheckpointInput(element) {
        return !!(element && element.matches && SELECTORS.some(function(selector) {
            return element.matches(selector);
        }));
    }

    // A right-click on the checkpoint dropdown is for the menu: the right button's mousedown would
    // focus the input, and gradio opens the option list on focus, under the menu.
    document.addEventListener("mousedown", function(event) {
        if (event.button === 2 && isCheckpointInput(event.composedPath()[0])) {
            event.preventDefault();
        }
    }, true);
    document.addEventListener("contextmenu", function(event) {
        var target = event.composedPath()[0];
        if (isCheckpointInput(target) && target === document.activeElement) {
            target.blur(); // the list was open already: close it
        }
    }, true);

    function register() {
        if (typeof appendContextMenuOption !== "function" || window.modeldocMenuRegistered) {
            return;
        }
        window.modeldocMenuRegistered = true;
        SELECTORS.forEach(function(selector) {
            appendContextMenuOption(selector, ENTRY, function() {
                inspectCheckpoint(selector);
            });
        });
    }

    // The WebUI's progress bar for a job: gives the job a task id and polls its progress.
    var lastButton = null;
    document.addEventListener("click", function(event) {
        var button = event.target && event.target.closest ? event.target.closest("button") : null;
        if (button) {
            lastButton = button;
        }
    }, true);
    // The result box of the section whose button was pressed (the first visible one under the
    // nearest ancestor that has one): where the progress bar goes and where the task id is kept.
    function resultBoxOf(button) {
        var near = button;
        while (near && near.querySelector && !near.querySelector(".modeldoc-job-result")) {
            near = near.parentElement;
        }
        var boxes = (near && near.querySelector ? near : root()).querySelectorAll(".modeldoc-job-result");
        for (var i = 0; i < boxes.length; i++) {
            if (boxes[i].offsetParent !== null) {
                return boxes[i];
            }
        }
        return boxes[0] || null;
    }

    var lastTask = "";

    // The WebUI inserts its progress bar before the element it is given, absolutely positioned
    // (AUTOMATIC1111: 14 px above the top of the nearest positioned ancestor). Given the content
    // inside the result box (a positioned gradio block), the bar sits on the box, right under the
    // buttons; given the box itself, it landed at the top of the whole panel.
    function progressAnchor(box) {
        var inner = box.querySelector(".prose") || box.lastElementChild;
        while (inner && inner.parentNode !== box) {
            inner = inner.parentNode;
        }
        return inner || box;
    }

    // The job starter of every job button (the tab's Python wires it with compat.js_call):
    // gradio passes the values of the inputs, then of the outputs; gradio 4 takes what this returns
    // as the inputs, so it returns exactly `count` values, the first one the job's task id. In a
    // WebUI the task id is the WebUI's and its progress bar polls it; standalone it is our own.
    window.modeldoc_start_job = function(count) {
        var args = Array.prototype.slice.call(arguments, 1, 1 + count);
        var webui = typeof randomId === "function" && typeof requestProgress === "function";
        var id = webui ? randomId() : "task(modeldoc-" + Math.random().toString(36).slice(2, 12) + ")";
        var box = resultBoxOf(lastButton);
        if (box) {
            box.setAttribute("data-modeldoc-task", id);
        }
        lastTask = id;
        if (webui && box) {
            requestProgress(id, progressAnchor(box), null, function() {});
        }
        args[0] = id;
        return args;
    };

    // An interrupt button: sends the task id of the job its section started (queued or running).
    window.modeldoc_interrupt_job = function(count) {
        var args = Array.prototype.slice.call(arguments, 1, 1 + count);
        var box = resultBoxOf(lastButton);
        args[0] = (box && box.getAttribute("data-modeldoc-task")) || lastTask;
        return args;
    };
    // After the tab writes a file, refresh the WebUI's own checkpoint and VAE dropdowns
    // (AUTOMATIC1111's quicksettings refresh buttons, Forge's checkpoint manager).
    var REFRESH_BUTTONS = ["refresh_sd_model_checkpoint", "refresh_sd_vae", "forge_refresh_checkpoint", "forge_refresh_vae"];
    var lastWritten = null;
    function refreshWebuiLists() {
        var written = root().querySelector(".modeldoc-job-result [data-written]");
        var key = written ? written.getAttribute("data-written") : null;
        if (!key || key === lastWritten) {
            return;
        }
        lastWritten = key;
        clickRefreshButtons();
    }
    function clickRefreshButtons() {
        REFRESH_BUTTONS.forEach(function(id) {
            var button = byId(id);
            if (button) {
                button.click();
            }
        });
    }

    // After "Load the new model", show it in the WebUI's own checkpoint dropdown (and, through the
    // settings it returns, the footer's hash): the WebUI's selectCheckpoint() sets the dropdown the
    // way the WebUI itself does; the model is loaded already, so nothing loads twice.
    var lastLoaded = null;
    function checkpointShown(title) {
        for (var i = 0; i < SELECTORS.length; i++) {
            var input = root().querySelector(SELECTORS[i]);
            // AUTOMATIC1111 shows the title ("name [hash]"), Forge the name
            if (input && input.value && (input.value === title || title.indexOf(input.value + " [") === 0)) {
                return true;
            }
        }
        return false;
    }
    function selectInWebui(title, tries) {
        clickRefreshButtons(); // the new file must be among the dropdown's choices first
        setTimeout(function() {
            try {
                selectCheckpoint(title);
            } catch (error) { // a fork without the hidden button: the dropdown just stays
                console.warn("Model Doctor: could not update the checkpoint dropdown", error);
                return;
            }
            setTimeout(function() {
                if (tries > 1 && !checkpointShown(title)) {
                    selectInWebui(title, tries - 1);
                }
            }, 800);
        }, 400);
    }
    function syncWebuiCheckpoint() {
        var loaded = root().querySelector(".modeldoc-job-result [data-loaded-checkpoint]");
        var key = loaded ? loaded.getAttribute("data-loaded-checkpoint") : null;
        if (!key || key === lastLoaded || typeof selectCheckpoint !== "function") {
            return;
        }
        lastLoaded = key;
        selectInWebui(key.slice(0, key.lastIndexOf("|")), 4);
    }

    window.modeldocInspectCheckpoint = inspectCheckpoint;
    window.modeldocRefreshWebuiLists = refreshWebuiLists;
    window.modeldocSwitchToTab = switchToTab;

    register(); // contextMenus.js is loaded before extension scripts
    if (typeof onUiLoaded === "function") {
        onUiLoaded(register);
    }
    if (typeof onAfterUiUpdate === "function") {
        onAfterUiUpdate(refreshWebuiLists);
        onAfterUiUpdate(syncWebuiCheckpoint);
    }
})();
