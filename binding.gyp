# npm runs `node-gyp rebuild` for a package with this file and no install script. The one
# target does nothing when a prebuilt addon for this platform loads, and otherwise builds it
# from the Rust sources through cargo (scripts/build-native.js says what it needs).
{
  "targets": [
    {
      "target_name": "maskfr_native",
      "type": "none",
      "actions": [
        {
          "action_name": "prebuilt_or_cargo",
          "inputs": [],
          "outputs": ["<(PRODUCT_DIR)/maskfr_native.stamp"],
          "action": ["node", "<(module_root_dir)/scripts/build-native.js", "--stamp", "<(PRODUCT_DIR)/maskfr_native.stamp"]
        }
      ]
    }
  ]
}
