"""PixelHeal's web app: pick a trained checkpoint, upload an image, paint or upload a mask, see every result.

Start it from the project root with ``python -m pixelheal.app`` (then open http://127.0.0.1:7860).

Built on Gradio rather than Streamlit: Gradio's `ImageMask` editor lets a user paint the hole on the
uploaded image natively, while Streamlit needs a third-party canvas component for that; Gradio also
serves all of its assets (fonts included) from the local server, so the app works offline, and its
event model (one button → one function → several outputs) fits "inpaint, then compare" directly.
The app logic lives in `service` (no UI imports), the page in `ui`.
"""
