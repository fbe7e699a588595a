// Payload types of the app's commands and events: generated from the Rust types
// (./generated.ts), under the names the UI uses, and the UI's own.
import type {
  AccountView,
  HostedView,
  JoinLinkView,
  NodeEvent,
  OpenArgs,
  OutputView,
  ParticipantView,
  PendingView,
  SessionView,
} from "./generated";

export type * from "./generated";

export type UserId = number;
export type Account = AccountView;
export type Hosted = HostedView;
/** A join link read or made by the shell, with its QR code (SVG). */
export type JoinLink = JoinLinkView;
/** An audio output: `id` is the spec to pass as `output`. */
export type Output = OutputView;
export type Participant = ParticipantView;
/** A change waiting for the server (made offline). */
export type PendingChange = PendingView;
export type SessionInfo = SessionView;
export type OpenSessionArgs = OpenArgs;

export type ProgressEvent = Extract<NodeEvent, { event: "progress" }>;

/** The device's position (tauri-plugin-geolocation on phones). */
export interface Position {
  latitude: number;
  longitude: number;
  speed?: number;
  heading?: number;
}
