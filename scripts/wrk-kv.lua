-- The key/value scheme shared by the GET scenario and its preload in scripts/bench.sh:
-- key "k<i>" for i in [0, keys), value derived from the key so an answer can be checked
-- without knowing which request it answers. bench.sh's preload must write the same values.

function value_for(key)
  return key .. ":" .. string.rep("v", 56)
end
