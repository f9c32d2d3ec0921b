// The audible cue of a new alert: a short two-tone beep made with WebAudio (no sound file). Browsers only
// let a page play sound after a user gesture: the context is created on the first click or key press.
const KEY = "gs-sound";
let context = null;
export const cues = { beeps: 0 };

export function soundEnabled() {
  return localStorage.getItem(KEY) !== "off";
}

export function setSoundEnabled(on) {
  localStorage.setItem(KEY, on ? "on" : "off");
}

export function unlockAudio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!context && Context) context = new Context();
  if (context && context.state === "suspended") context.resume().catch(() => {});
}

export function beep() {
  if (!soundEnabled()) return;
  cues.beeps += 1;
  if (!context) return;
  const start = context.currentTime + 0.01;
  [880, 660, 880].forEach((frequency, i) => {
    const at = start + i * 0.22;
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.35, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(at);
    oscillator.stop(at + 0.2);
  });
}
