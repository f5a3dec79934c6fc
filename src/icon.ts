/**
 * The panel's tab icon: a flame, drawn in the theme's icon colour.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M13.5 0.7s.7 2.6.7 4.8c0 2-1.3 3.7-3.4 3.7
    s-3.6-1.7-3.6-3.7l.03-.36C5.2 7.5 4 10.6 4 14c0 4.4 3.6 8 8 8s8-3.6 8-8
    C20 8.6 17.4 3.8 13.5.7zM11.7 19c-1.8 0-3.2-1.4-3.2-3.1 0-1.6 1-2.7 2.8-3.1
    1.8-.4 3.6-1.2 4.6-2.6.4 1.3.6 2.6.6 4 0 2.6-2.1 4.8-4.8 4.8z"/>
</svg>`;

export const tokenhotIcon = new LabIcon({ name: 'tokenhot-jupyter:flame', svgstr: SVG });
