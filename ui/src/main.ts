import "leaflet/dist/leaflet.css";
import "./styles.css";
import { backend } from "./backend";
import { startApp } from "./start";

void startApp(document.body, backend);
