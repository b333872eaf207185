#include "face/face_templates.h"

namespace fswap {

const FaceTemplate kFaceFusionArcface112V1 = {{{0.35473214f, 0.45658929f},
                                               {0.64526786f, 0.45658929f},
                                               {0.50000000f, 0.61154464f},
                                               {0.37913393f, 0.77687500f},
                                               {0.62086607f, 0.77687500f}}};

const FaceTemplate kFaceFusionArcface128 = {{{0.36167656f, 0.40387734f},
                                             {0.63696719f, 0.40235469f},
                                             {0.50019687f, 0.56044219f},
                                             {0.38710391f, 0.72160547f},
                                             {0.61507734f, 0.72034453f}}};

const FaceTemplate kFaceFusionFfhq512 = {{{0.37691676f, 0.46864664f},
                                          {0.62285697f, 0.46912813f},
                                          {0.50123859f, 0.61331904f},
                                          {0.39308822f, 0.72541100f},
                                          {0.61150205f, 0.72490465f}}};

const FaceTemplate kFaceFusionMtcnn512 = {{{0.36562865f, 0.46733799f},
                                           {0.63305391f, 0.46585885f},
                                           {0.50019127f, 0.61942959f},
                                           {0.39032951f, 0.77598822f},
                                           {0.61178945f, 0.77476328f}}};

}  // namespace fswap
