"""Built-in physics plug-ins, registered through the `scalebridge.physics` entry points."""
