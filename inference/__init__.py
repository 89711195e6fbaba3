"""The seam between the web and the GPU worker: the only code that knows both Django and
`inference_worker`."""
