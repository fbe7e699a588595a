// A stand-in for YouTube's IFrame API script (https://www.youtube.com/iframe_api), for tests
// only: the same JavaScript surface the app uses (YT.Player with loadVideoById,
// cueVideoById, seekTo, playVideo, pauseVideo, stopVideo, getCurrentTime, getPlayerState,
// getDuration, destroy; onReady, onStateChange and onError events; YT.PlayerState), driven
// by a clock instead of a video. No network, no video: what it "plays" is a position that
// moves with the clock while PLAYING, as a real player's getCurrentTime() does.
//
// Set before the script runs (all optional):
//   window.__ytStandin = {
//     bufferMs: 120,               // how long a play or seek buffers before PLAYING
//     errors: { VIDEOID: 150 },    // videos that fail with this onError code
//     durations: { VIDEOID: 30 },  // getDuration() per video (default 60 s)
//     now: () => performance.now() // the clock, ms
//   }
// It keeps a log of every call in window.__ytStandin.calls, and the players made (not yet
// destroyed) in window.__ytStandin.players, for tests to read.
(function () {
  "use strict";
  var cfg = (window.__ytStandin = window.__ytStandin || {});
  cfg.calls = cfg.calls || [];
  cfg.players = cfg.players || [];
  var now = function () { return cfg.now ? cfg.now() : performance.now(); };
  var bufferMs = function () { return typeof cfg.bufferMs === "number" ? cfg.bufferMs : 120; };
  var State = { UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5 };
  var ID = /^[A-Za-z0-9_-]{11}$/;

  function Player(target, options) {
    var el = typeof target === "string" ? document.getElementById(target) : target;
    // Where YouTube puts its <iframe>; the stand-in shows an empty box of its size.
    var frame = document.createElement("div");
    frame.setAttribute("role", "img");
    frame.setAttribute("aria-label", "YouTube video player (stand-in)");
    frame.setAttribute("data-youtube-standin", "");
    frame.style.width = String((options && options.width) || 320) + "px";
    frame.style.height = String((options && options.height) || 180) + "px";
    if (el && el.parentNode) el.parentNode.replaceChild(frame, el);
    this._frame = frame;
    this._events = (options && options.events) || {};
    this._video = null;
    this._state = State.UNSTARTED;
    this._base = 0; // position (s) at _since while PLAYING, the position otherwise
    this._since = 0;
    this._timer = null;
    cfg.players.push(this);
    var self = this;
    setTimeout(function () { self._fire("onReady", undefined); }, 0);
  }

  Player.prototype._fire = function (name, data) {
    var f = this._events[name];
    if (typeof f === "function") f({ target: this, data: data });
  };
  Player.prototype._log = function (name, args) {
    cfg.calls.push({ call: name, args: Array.prototype.slice.call(args), at: now() });
  };
  Player.prototype._position = function () {
    if (this._state !== State.PLAYING) return this._base;
    var p = this._base + (now() - this._since) / 1000;
    var d = this.getDuration();
    return p < d ? p : d;
  };
  Player.prototype._set = function (state) {
    if (this._state === state) return;
    this._state = state;
    this._fire("onStateChange", state);
  };
  Player.prototype._clear = function () {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = null;
  };
  // Buffers for bufferMs, then plays from _base, and ends at the video's duration.
  Player.prototype._buffer = function () {
    var self = this;
    this._clear();
    this._set(State.BUFFERING);
    this._timer = setTimeout(function () {
      self._since = now();
      self._set(State.PLAYING);
      var left = (self.getDuration() - self._base) * 1000;
      self._timer = setTimeout(function () {
        self._base = self.getDuration();
        self._timer = null;
        self._set(State.ENDED);
      }, Math.max(0, left));
    }, bufferMs());
  };
  Player.prototype._load = function (arg, start) {
    var id = typeof arg === "object" && arg !== null ? arg.videoId : arg;
    var at = typeof arg === "object" && arg !== null ? arg.startSeconds : start;
    this._clear();
    this._video = String(id);
    this._base = Number(at) || 0;
    this._state = State.UNSTARTED;
    var code = !ID.test(this._video) ? 2 : (cfg.errors || {})[this._video];
    if (code !== undefined) {
      var self = this;
      setTimeout(function () { self._fire("onError", code); }, 0);
      return false;
    }
    return true;
  };

  Player.prototype.loadVideoById = function (arg, start) {
    this._log("loadVideoById", arguments);
    if (this._load(arg, start)) this._buffer();
  };
  Player.prototype.cueVideoById = function (arg, start) {
    this._log("cueVideoById", arguments);
    if (this._load(arg, start)) this._set(State.CUED);
  };
  Player.prototype.playVideo = function () {
    this._log("playVideo", arguments);
    if (this._video === null || this._state === State.PLAYING || this._state === State.BUFFERING) return;
    this._buffer();
  };
  Player.prototype.pauseVideo = function () {
    this._log("pauseVideo", arguments);
    if (this._video === null) return;
    this._base = this._position();
    this._clear();
    this._set(State.PAUSED);
  };
  Player.prototype.stopVideo = function () {
    this._log("stopVideo", arguments);
    this._clear();
    this._base = 0;
    this._set(State.UNSTARTED);
  };
  Player.prototype.seekTo = function (seconds) {
    this._log("seekTo", arguments);
    if (this._video === null) return;
    var playing = this._state === State.PLAYING || this._state === State.BUFFERING;
    this._base = Math.max(0, Math.min(Number(seconds) || 0, this.getDuration()));
    if (playing) this._buffer();
  };
  Player.prototype.getCurrentTime = function () { return this._position(); };
  Player.prototype.getPlayerState = function () { return this._state; };
  Player.prototype.getDuration = function () {
    var d = this._video === null ? undefined : (cfg.durations || {})[this._video];
    return typeof d === "number" ? d : this._video === null ? 0 : 60;
  };
  Player.prototype.getVideoData = function () { return { video_id: this._video }; };
  Player.prototype.getIframe = function () { return this._frame; };
  Player.prototype.destroy = function () {
    this._clear();
    var i = cfg.players.indexOf(this);
    if (i >= 0) cfg.players.splice(i, 1);
    if (this._frame.parentNode) this._frame.parentNode.removeChild(this._frame);
  };

  window.YT = { Player: Player, PlayerState: State, loaded: 1 };
  if (typeof window.onYouTubeIframeAPIReady === "function") window.onYouTubeIframeAPIReady();
})();
